"""Speech-LLM adapter on tiny real architectures (Qwen2-Audio, Voxtral, AF3), saved and
loaded back offline through AutoConfig / AutoProcessor / the model class."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

from gapscope.models import ModelSpec, cross_modal_pairs, family, load_adapter
from gapscope.models.speech_llm import DEFAULT_PROMPT

from .builders.speech_llm_tiny import ARCHITECTURES, TINY_LLM, build_speech_llm_tiny
from .conftest import SENTENCES

CPU = torch.device("cpu")
RATE = 16_000
WINDOW_S = 4  # audio window of the tiny encoders (the real ones: 30 s)
N_LAYERS = TINY_LLM["num_hidden_layers"]
LAYERS = [f"layer{i:02d}" for i in range(N_LAYERS + 1)]
ENG = SENTENCES["eng_Latn"]
ALL_SENTENCES = [s for group in SENTENCES.values() for s in group]


@pytest.fixture(scope="session")
def tiny_llms(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech_llm")
    return {
        arch: build_speech_llm_tiny(arch, root / arch, ALL_SENTENCES, window_s=WINDOW_S)
        for arch in ARCHITECTURES
    }


def spec(path, **kw) -> ModelSpec:
    return ModelSpec(name="tiny", adapter="speech_llm", checkpoint=str(path), **kw)


@pytest.fixture(scope="module", params=ARCHITECTURES)
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def text_adapter(tiny_llms, arch):
    return load_adapter(spec(tiny_llms[arch]), "text", CPU)


@pytest.fixture(scope="module")
def speech_adapter(tiny_llms, arch):
    return load_adapter(spec(tiny_llms[arch]), "speech", CPU)


def expected_tokens(arch: str, n_samples: int) -> tuple[int, int]:
    """(real encoder frames, real audio tokens) of an utterance, from the models' papers.

    Whisper: 100 mel frames/s (ceil(samples / 160)), conv stride 2 -> 50 frames/s. Qwen2-Audio
    and AF3 average-pool 2 -> 25 tokens/s; Voxtral stacks 4 frames -> 12.5 tokens/s. Long
    audio (Voxtral, AF3) is cut into windows that are counted one by one.
    """
    window = WINDOW_S * RATE
    frames = tokens = 0
    for start in range(0, n_samples, window):
        mel = math.ceil(min(window, n_samples - start) / 160)
        enc = (mel - 1) // 2 + 1
        frames += enc
        tokens += math.ceil(enc / 4) if arch == "voxtral" else (enc - 2) // 2 + 1
    return frames, tokens


# -- text ---------------------------------------------------------------------------------


def test_text_taps_shapes_and_content_lengths(text_adapter):
    taps = text_adapter.taps("text")
    assert taps == [*LAYERS, "llm_out"]
    out = text_adapter.encode(ENG, "eng_Latn", "text")
    assert set(out.vectors) == set(taps)
    content = [len(text_adapter.content_ids(s)) for s in ENG]
    for tap in taps:
        assert out.vectors[tap].shape == (3, 32)
        assert out.vectors[tap].dtype == np.float32
        np.testing.assert_array_equal(out.lengths[tap], content)
    # the batching length is the whole prompt: template + transcript
    template = len(text_adapter._prefix) + len(text_adapter._suffix)
    assert text_adapter.text_lengths(ENG, "eng_Latn") == [template + n for n in content]
    assert template > 10


def test_text_pools_the_transcript_tokens_only(text_adapter):
    """layer00 is the mean embedding of exactly the transcript's tokens, nothing else."""
    out = text_adapter.encode(ENG, "eng_Latn", "text")
    embed = text_adapter.llm.get_input_embeddings()
    for i, sentence in enumerate(ENG):
        ids = torch.tensor(text_adapter.content_ids(sentence))
        expected = embed(ids).mean(0).detach().numpy()
        np.testing.assert_allclose(out.vectors["layer00"][i], expected, atol=1e-6, rtol=0)


def test_template_tokens_are_excluded(text_adapter):
    """Sentences that differ only in content differ in pooled length by their token counts."""
    short, long = "We bought bread.", "We bought fresh bread and cold milk."
    out = text_adapter.encode([short, long], "eng_Latn", "text")
    n_short, n_long = (len(text_adapter.content_ids(s)) for s in (short, long))
    assert n_long > n_short
    assert out.lengths["layer02"][1] - out.lengths["layer02"][0] == n_long - n_short
    assert out.lengths["layer02"][0] == n_short


def test_prompt_is_used_before_the_content_only(tiny_llms, arch, text_adapter):
    """A causal LLM: text after {content} changes nothing pooled, text before does."""
    base = text_adapter.encode(ENG, "eng_Latn", "text").vectors
    after = load_adapter(
        spec(tiny_llms[arch], options={"prompt": DEFAULT_PROMPT + "\nThank you."}), "text", CPU
    ).encode(ENG, "eng_Latn", "text")
    before = load_adapter(
        spec(tiny_llms[arch], options={"prompt": "Say this:\n{content}"}), "text", CPU
    ).encode(ENG, "eng_Latn", "text")
    for tap in base:
        np.testing.assert_allclose(after.vectors[tap], base[tap], atol=1e-6, rtol=0)
    np.testing.assert_allclose(before.vectors["layer00"], base["layer00"], atol=1e-6, rtol=0)
    assert not np.allclose(before.vectors["layer02"], base["layer02"], atol=1e-4)


def test_chat_format_can_be_switched_off(tiny_llms, arch, text_adapter):
    bare = load_adapter(spec(tiny_llms[arch], options={"chat": False}), "text", CPU)
    assert len(bare._prefix) < len(text_adapter._prefix)
    got, base = (a.encode(ENG, "eng_Latn", "text") for a in (bare, text_adapter))
    np.testing.assert_array_equal(got.lengths["layer02"], base.lengths["layer02"])
    np.testing.assert_allclose(got.vectors["layer00"], base.vectors["layer00"], atol=1e-6)
    assert not np.allclose(got.vectors["layer02"], base.vectors["layer02"], atol=1e-4)


def test_padded_batch_equals_one_at_a_time_text(text_adapter):
    sentences = [*SENTENCES["zho_Hans"], *SENTENCES["deu_Latn"]]
    batch = text_adapter.encode(sentences, "zho_Hans", "text")
    for i, sentence in enumerate(sentences):
        single = text_adapter.encode([sentence], "zho_Hans", "text")
        for tap, vec in batch.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)
            assert batch.lengths[tap][i] == single.lengths[tap][0]


def test_llm_out_matches_the_saved_model_and_last_layer_is_not_normed(tiny_llms, arch):
    """Weights really come from the folder; llm_out = final norm; layerNN = raw block output."""
    import transformers

    from gapscope.models.speech_llm import ARCHITECTURES as CLASSES

    adapter = load_adapter(spec(tiny_llms[arch]), "text", CPU)
    cls = getattr(transformers, CLASSES[arch].model_class)
    saved = cls.from_pretrained(tiny_llms[arch]).eval()
    sentence = ENG[0]
    prefix, body = adapter._prefix, adapter.content_ids(sentence)
    ids = torch.tensor([[*prefix, *body, *adapter._suffix]])
    with torch.no_grad():
        hidden = saved.model.language_model(input_ids=ids).last_hidden_state[0]
    expected = hidden[len(prefix) : len(prefix) + len(body)].mean(0).numpy()
    out = adapter.encode([sentence], "eng_Latn", "text")
    np.testing.assert_allclose(out.vectors["llm_out"][0], expected, atol=1e-5, rtol=0)
    assert not np.allclose(out.vectors[LAYERS[-1]][0], out.vectors["llm_out"][0], atol=1e-3)


# -- speech -------------------------------------------------------------------------------


def test_speech_taps_shapes_and_real_lengths(speech_adapter, arch, waves):
    taps = speech_adapter.taps("speech")
    assert taps == ["encoder_out", "projector_out", *LAYERS, "llm_out"]
    out = speech_adapter.encode(waves, "eng_Latn", "speech")
    assert list(out.vectors) == taps and list(out.lengths) == taps
    for i, wave in enumerate(waves):
        frames, tokens = expected_tokens(arch, len(wave))
        assert out.lengths["encoder_out"][i] == frames
        for tap in ["projector_out", *LAYERS, "llm_out"]:
            assert out.lengths[tap][i] == tokens, (tap, i)
    for tap in taps:
        assert out.vectors[tap].shape == (3, 32)
        assert out.vectors[tap].dtype == np.float32


def test_projector_out_is_what_the_llm_receives(speech_adapter, waves):
    """The connector output at the real audio tokens equals the LLM input at the pooled
    positions: audio placeholders are where the adapter pools, and no others."""
    out = speech_adapter.encode(waves, "eng_Latn", "speech")
    np.testing.assert_allclose(out.vectors["projector_out"], out.vectors["layer00"], atol=1e-6)
    assert not np.allclose(out.vectors["encoder_out"], out.vectors["llm_out"], atol=1e-3)


def test_padded_batch_equals_one_at_a_time_speech(speech_adapter, waves):
    batch = speech_adapter.encode(waves, "eng_Latn", "speech")
    for i, wave in enumerate(waves):
        single = speech_adapter.encode([wave], "eng_Latn", "speech")
        for tap, vec in batch.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)
            assert batch.lengths[tap][i] == single.lengths[tap][0]


def test_synthesised_sentences(speech_adapter, arch):
    tts = pytest.importorskip("gapscope.corpus.tts")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    waves = [tts.synthesize(s, "eng_Latn") for s in ENG[:2]]
    out = speech_adapter.encode(waves, "eng_Latn", "speech")
    for i, wave in enumerate(waves):
        assert out.lengths["layer01"][i] == expected_tokens(arch, len(wave))[1]
    assert np.isfinite(out.vectors["layer03"]).all()


def test_long_audio_is_chunked_or_refused(speech_adapter, arch):
    long = (0.1 * np.sin(np.arange(int((WINDOW_S + 1.5) * RATE)) / 20)).astype(np.float32)
    if arch == "qwen2_audio":
        with pytest.raises(ValueError, match=f"at most {WINDOW_S} s"):
            speech_adapter.encode([long], "eng_Latn", "speech")
        return
    out = speech_adapter.encode([long], "eng_Latn", "speech")
    frames, tokens = expected_tokens(arch, len(long))
    assert out.lengths["encoder_out"][0] == frames
    assert out.lengths["layer02"][0] == tokens
    if arch == "voxtral":  # two whole windows of placeholders, of which only the real pool
        assert tokens < 2 * (50 * WINDOW_S // 4)


def test_too_short_audio_is_refused(speech_adapter):
    blip = (0.1 * np.ones(320)).astype(np.float32)  # 20 ms: fewer than 2 audio tokens
    with pytest.raises(ValueError, match="audio too short"):
        speech_adapter.encode([blip], "eng_Latn", "speech")


def test_deterministic(speech_adapter, text_adapter, waves):
    a = speech_adapter.encode(waves, "eng_Latn", "speech").vectors["layer02"]
    b = speech_adapter.encode(waves, "eng_Latn", "speech").vectors["layer02"]
    np.testing.assert_array_equal(a, b)
    c = text_adapter.encode(ENG, "eng_Latn", "text").vectors["layer02"]
    d = text_adapter.encode(ENG, "eng_Latn", "text").vectors["layer02"]
    np.testing.assert_array_equal(c, d)


def test_random_init_is_seeded_and_differs_from_pretrained(tiny_llms, arch, speech_adapter, waves):
    def run(**kw):
        adapter = load_adapter(spec(tiny_llms[arch], **kw), "speech", CPU)
        return adapter.encode(waves, "eng_Latn", "speech").vectors

    a, b, c = run(init="random", seed=1), run(init="random", seed=1), run(init="random", seed=2)
    pretrained = speech_adapter.encode(waves, "eng_Latn", "speech").vectors
    # the text view of the control has the same random LLM as its speech view
    text = load_adapter(spec(tiny_llms[arch], init="random", seed=1), "text", CPU)
    speech = load_adapter(spec(tiny_llms[arch], init="random", seed=1), "speech", CPU)
    torch.testing.assert_close(text.llm.state_dict(), speech.llm.state_dict())
    for tap in ("encoder_out", "projector_out", "layer03"):
        np.testing.assert_array_equal(a[tap], b[tap])
        assert not np.allclose(a[tap], c[tap])
        assert not np.allclose(a[tap], pretrained[tap])


# -- errors and registry ------------------------------------------------------------------


def test_unknown_model_type_is_refused(tmp_path):
    from transformers import LlamaConfig

    LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(
        tmp_path
    )
    with pytest.raises(ValueError, match=r"'llama' model; adapter speech_llm supports .*voxtral"):
        load_adapter(spec(tmp_path), "text", CPU)


def test_missing_weights_are_refused(tiny_llms, tmp_path):
    from safetensors.torch import load_file, save_file

    src = tiny_llms["qwen2_audio"]
    for item in src.iterdir():
        shutil.copy(item, tmp_path / item.name)
    weights = load_file(src / "model.safetensors")
    kept = {k: v for k, v in weights.items() if "audio_tower.layers.1." not in k}
    assert len(kept) < len(weights)
    save_file(kept, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="lacks .* weights"):
        load_adapter(spec(tmp_path), "speech", CPU)


@pytest.mark.parametrize(
    "options, match",
    [
        ({"prompt": "no placeholder"}, "exactly one"),
        ({"prompt": "{content} and {content}"}, "exactly one"),
        ({"temperature": 1}, "unknown key"),
        ({"chat": "yes"}, "true or false"),
    ],
)
def test_bad_options_are_refused(tiny_llms, options, match):
    with pytest.raises(ValueError, match=match):
        load_adapter(spec(tiny_llms["voxtral"], options=options), "text", CPU)


def _copy(src, dst):
    for item in src.iterdir():
        shutil.copy(item, dst / item.name)
    return dst


def test_chat_template_in_tokenizer_config_is_used(tiny_llms, tmp_path):
    """Many repos keep the template in tokenizer_config.json only: same prompt, same vectors."""
    import json

    from .builders.speech_llm_tiny import QWEN_CHAT_TEMPLATE

    folder = _copy(tiny_llms["audioflamingo3"], tmp_path)
    (folder / "chat_template.jinja").unlink()
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["chat_template"] = QWEN_CHAT_TEMPLATE
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    moved = load_adapter(spec(folder), "text", CPU)
    original = load_adapter(spec(tiny_llms["audioflamingo3"]), "text", CPU)
    assert moved.processor.chat_template is None
    assert (moved._prefix, moved._suffix) == (original._prefix, original._suffix)
    a, b = moved.encode(ENG, "eng_Latn"), original.encode(ENG, "eng_Latn")
    np.testing.assert_array_equal(a.vectors["llm_out"], b.vectors["llm_out"])


def test_missing_chat_template_is_refused_unless_chat_is_off(tiny_llms, tmp_path):
    folder = _copy(tiny_llms["audioflamingo3"], tmp_path)
    (folder / "chat_template.jinja").unlink()
    with pytest.raises(ValueError, match="ships no chat template"):
        load_adapter(spec(folder), "text", CPU)
    bare = load_adapter(spec(folder, options={"chat": False}), "text", CPU)
    assert bare.encode(ENG, "eng_Latn").lengths["llm_out"].min() > 0


@pytest.mark.parametrize("name", ["qwen2_audio", "voxtral", "audioflamingo3"])
def test_feature_extractor_with_other_mel_bins_is_refused(tiny_llms, tmp_path, name):
    import json

    folder = _copy(tiny_llms[name], tmp_path)
    path = folder / "processor_config.json"
    config = json.loads(path.read_text())
    bins = config["feature_extractor"]["feature_size"]
    config["feature_extractor"]["feature_size"] = 64
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=f"gives 64 mel bins but the audio encoder reads {bins}"):
        load_adapter(spec(folder), "speech", CPU)


def test_family_pairs():
    fam = family("speech_llm")
    assert fam.supports("amh_Ethi", "speech") and fam.supports("zho_Hans", "text")
    text = [*LAYERS, "llm_out"]
    speech = ["encoder_out", "projector_out", *LAYERS, "llm_out"]
    pairs = cross_modal_pairs("speech_llm", text, speech)
    assert pairs[: len(LAYERS)] == [(t, t) for t in LAYERS]
    assert pairs[len(LAYERS) :] == [
        ("layer00", "encoder_out"),
        ("layer00", "projector_out"),
        ("llm_out", "llm_out"),
    ]
    assert fam.length_adaptation == (("layer00", "encoder_out"), ("layer00", "projector_out"))


def test_run_view_speech_end_to_end(tmp_path, tiny_llms, waves):
    """The extraction stage writes the adapter's taps, pooled vectors and lengths."""
    import pandas as pd
    import soundfile as sf

    from gapscope.stages import extract
    from gapscope.store import open_view

    paths = []
    for i, wave in enumerate(waves):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], wave, RATE, subtype="FLOAT")
    manifest = pd.DataFrame(
        {
            "sentence_id": [10, 11, 12],
            "recording": 0,
            "text": ENG,
            "audio": paths,
            "num_samples": [len(w) for w in waves],
        }
    )
    model = {
        "name": "tiny",
        "adapter": "speech_llm",
        "checkpoint": str(tiny_llms["voxtral"]),
        "revision": None,
        "init": "pretrained",
        "dtype": "bfloat16",
        "seed": 0,
        "trust_remote_code": False,
        "pooling": "masked_mean",
        "recording": "first",
        "options": {},
    }
    store = tmp_path / "s.zarr"
    stats = extract.run_view(
        manifest=manifest,
        model=model,
        language="eng_Latn",
        modality="speech",
        store=str(store),
        budget=40_000,
        chunk_size=2,
        device="cpu",
    )
    assert stats["n_sentences"] == 3
    view = open_view(store)
    adapter = load_adapter(spec(tiny_llms["voxtral"]), "speech", CPU)
    assert view.taps == adapter.taps("speech")
    direct = adapter.encode(waves, "eng_Latn", "speech")
    for tap in ("encoder_out", "projector_out", "layer03"):
        np.testing.assert_allclose(view.read(tap), direct.vectors[tap], atol=1e-5, rtol=0)


# -- the prompt, as each family's processor renders it -----------------------------------

INSTRUCTION = "\nRepeat this sentence."


def wave_of(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


@pytest.mark.parametrize("name", ["qwen2_audio", "audioflamingo3"])
def test_speech_prompt_is_what_the_processor_renders(tiny_llms, name):
    """The official layout, audio first (every official example): the checkpoint's processor
    renders the turn [audio, instruction] with its chat template and expands the audio
    placeholder; the adapter's speech prompt is those very token ids (Qwen2-Audio: with its
    'Audio 1:' label and <|audio_bos|> ... <|audio_eos|>\\n)."""
    from transformers import AutoProcessor

    adapter = load_adapter(spec(tiny_llms[name]), "speech", CPU)
    processor = AutoProcessor.from_pretrained(tiny_llms[name])
    turn = [{"type": "audio", "audio": "x"}, {"type": "text", "text": INSTRUCTION}]
    rendered = processor.apply_chat_template(
        [{"role": "user", "content": turn}], tokenize=False, add_generation_prompt=True
    )
    if name == "qwen2_audio":
        assert "user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n" in rendered
    for seconds in (1.3, 2.9):
        ids = processor(text=rendered, audio=[wave_of(seconds)], sampling_rate=RATE)
        ids = list(ids["input_ids"][0])
        n = ids.count(adapter.audio_token_id)
        assert n == expected_tokens(name, int(seconds * RATE))[1]
        assert adapter.speech_prompt_ids(n) == ids
    # the text prompt: the same turn with the transcript where the audio was
    text = load_adapter(spec(tiny_llms[name]), "text", CPU)
    sentence = ENG[0]
    whole = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": sentence + INSTRUCTION}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    expected = processor.tokenizer(whole, add_special_tokens=False)["input_ids"]
    assert [*text._prefix, *text.content_ids(sentence), *text._suffix] == expected


def test_qwen2_audio_base_prompt_without_chat_format(tiny_llms):
    """Base checkpoints (chat: false) get the documented Qwen2-Audio prompt."""
    from transformers import AutoProcessor

    prompt = "{content}Generate the caption in English:"
    adapter = load_adapter(
        spec(tiny_llms["qwen2_audio"], options={"chat": False, "prompt": prompt}), "speech", CPU
    )
    processor = AutoProcessor.from_pretrained(tiny_llms["qwen2_audio"])
    documented = "<|audio_bos|><|AUDIO|><|audio_eos|>Generate the caption in English:"
    ids = list(processor(text=documented, audio=[wave_of(2.0)], sampling_rate=RATE)["input_ids"][0])
    assert adapter.speech_prompt_ids(ids.count(adapter.audio_token_id)) == ids


def test_voxtral_loads_its_tekken_json_and_prompts_in_mistral_format(tiny_llms):
    """Voxtral ships tekken.json (no tokenizer.json); transformers reads it without
    mistral-common, and the special ids the prompt needs resolve. The speech prompt is
    mistral-common's instruct format (which transformers' processor renders only with
    mistral-common): <s>[INST] [BEGIN_AUDIO] [AUDIO] x n <instruction> [/INST]."""
    folder = tiny_llms["voxtral"]
    assert (folder / "tekken.json").exists() and not (folder / "tokenizer.json").exists()
    adapter = load_adapter(spec(folder), "speech", CPU)
    tok = adapter.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<s>", "[INST]", "[/INST]", "[BEGIN_AUDIO]")}
    assert ids == {"<s>": 1, "[INST]": 3, "[/INST]": 4, "[BEGIN_AUDIO]": 25}
    assert adapter.audio_token_id == 24 == tok.convert_tokens_to_ids(adapter.processor.audio_token)
    instruction = tok.encode(INSTRUCTION, add_special_tokens=False)
    assert adapter.speech_prompt_ids(5) == [1, 3, 25, *[24] * 5, *instruction, 4]
    text = load_adapter(spec(folder), "text", CPU)
    body = text.content_ids(ENG[0])
    assert [*text._prefix, *body, *text._suffix] == [1, 3, *body, *instruction, 4]
    assert body == tok.encode(ENG[0], add_special_tokens=False)
