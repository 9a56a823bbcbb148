"""SALMONN assembled from parts: key mapping, BEATs, and a tiny model loaded offline."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gapscope.models import FAMILIES, ModelSpec, cross_modal_pairs, load_adapter
from gapscope.models.salmonn import (
    N_WINDOWS,
    WINDOW,
    CheckpointKeyError,
    load_salmonn_weights,
    map_official_state_dict,
    read_salmonn_checkpoint,
    real_windows,
    to_official_state_dict,
    trained_state_dict,
)

from .conftest import SENTENCES

CPU = torch.device("cpu")
REFERENCE = Path(__file__).parent / "data" / "salmonn_beats_reference.npz"
QF = "speech_Qformer.bert"
LLAMA = "llama_model.base_model.model.model.layers"


# --------------------------------------------------------------------------- helpers
def official_keys(n_qformer: int = 2, n_llm: int = 2, default: bool = True) -> list[str]:
    """The trained-weight names of an official SALMONN checkpoint, written out by hand."""
    keys = [f"{QF}.embeddings.LayerNorm.{p}" for p in ("weight", "bias")]
    keys += ["speech_query_tokens", "speech_llama_proj.weight", "speech_llama_proj.bias"]
    keys += [f"ln_{s}.{p}" for s in ("speech", "audio") for p in ("weight", "bias")]
    for i in range(n_qformer):
        layer = f"{QF}.encoder.layer.{i}"
        for p in ("weight", "bias"):
            for part in ("attention", "crossattention"):
                keys += [f"{layer}.{part}.self.{m}.{p}" for m in ("query", "key", "value")]
                keys += [f"{layer}.{part}.output.{m}.{p}" for m in ("dense", "LayerNorm")]
            keys += [f"{layer}.intermediate_query.dense.{p}", f"{layer}.output_query.dense.{p}"]
            keys += [f"{layer}.output_query.LayerNorm.{p}"]
    adapter = ".default" if default else ""
    for i in range(n_llm):
        for proj in ("q_proj", "v_proj"):
            keys += [f"{LLAMA}.{i}.self_attn.{proj}.lora_{ab}{adapter}.weight" for ab in "AB"]
    return keys


def spec(path, **kw) -> ModelSpec:
    return ModelSpec(name="tiny_salmonn", adapter="salmonn", checkpoint=str(path), **kw)


def make_waves(lengths) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        (
            0.3 * np.sin(2 * np.pi * (150 + 40 * i) * np.arange(n) / 16000)
            + 0.02 * rng.standard_normal(n)
        ).astype(np.float32)
        for i, n in enumerate(lengths)
    ]


LENGTHS = (24000, 9000, 16000)  # 1.5 s, 0.5625 s, 1 s


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def tiny_salmonn(tmp_path_factory):
    from .builders.salmonn_tiny import build_salmonn_tiny

    texts = [s for group in SENTENCES.values() for s in group]
    return build_salmonn_tiny(tmp_path_factory.mktemp("salmonn") / "tiny", texts, seed=0)


@pytest.fixture(scope="module")
def text_adapter(tiny_salmonn):
    return load_adapter(spec(tiny_salmonn), "text", CPU)


@pytest.fixture(scope="module")
def speech_adapter(tiny_salmonn):
    return load_adapter(spec(tiny_salmonn), "speech", CPU)


@pytest.fixture(scope="module")
def waves():
    return make_waves(LENGTHS)


@pytest.fixture(scope="module")
def speech_out(speech_adapter, waves):
    return speech_adapter.encode(waves, "eng_Latn", "speech")


# --------------------------------------------------------------------------- key mapping
def test_official_names_map_onto_the_assembled_model(text_adapter):
    """Hand-written official names land exactly on the tiny model's trained weights."""
    mapped = map_official_state_dict(dict.fromkeys(official_keys(), torch.zeros(1)))
    assert set(mapped) == set(trained_state_dict(text_adapter.model))
    assert mapped.keys() >= {
        "qformer.layernorm.weight",
        "qformer.encoder.layer.1.crossattention.attention.key.weight",
        "qformer.encoder.layer.0.attention.output.LayerNorm.bias",
        "qformer.encoder.layer.1.output_query.dense.weight",
        "query_tokens",
        "proj.bias",
        "ln_audio.weight",
        "llm.base_model.model.layers.1.self_attn.v_proj.lora_B.default.weight",
    }


def test_keys_without_adapter_name_map_to_the_same_place():
    with_default = map_official_state_dict(dict.fromkeys(official_keys(), 0))
    without = map_official_state_dict(dict.fromkeys(official_keys(default=False), 0))
    assert set(with_default) == set(without)


def test_round_trip_through_official_names():
    values = {k: torch.full((2,), float(i)) for i, k in enumerate(official_keys())}
    mapped = map_official_state_dict(values)
    back = to_official_state_dict(mapped)
    assert set(back) == set(values)
    for key, value in values.items():
        torch.testing.assert_close(back[key], value)
    assert map_official_state_dict(back).keys() == mapped.keys()


def test_unused_official_keys_are_dropped():
    extras = [
        f"{QF}.embeddings.word_embeddings.weight",
        f"{QF}.embeddings.position_embeddings.weight",
        f"{QF}.embeddings.position_ids",
        f"{QF}.encoder.layer.0.intermediate.dense.weight",
        f"{QF}.encoder.layer.1.output.LayerNorm.bias",
        "speech_Qformer.cls.predictions.transform.dense.weight",
        f"{LLAMA}.3.self_attn.rotary_emb.inv_freq",
    ]
    mapped = map_official_state_dict(dict.fromkeys(official_keys() + extras, 0))
    assert mapped.keys() == map_official_state_dict(dict.fromkeys(official_keys(), 0)).keys()


def test_unknown_keys_are_listed():
    bad = [f"{QF}.encoder.layer.0.attention.self.bogus.weight", f"{LLAMA}.0.mlp.up_proj.weight"]
    with pytest.raises(CheckpointKeyError, match="2 unknown key") as err:
        map_official_state_dict(dict.fromkeys(official_keys() + bad, 0))
    for key in bad:
        assert key in str(err.value)


def test_same_weight_twice_is_refused():
    key = f"{LLAMA}.0.self_attn.q_proj.lora_A"
    state = dict.fromkeys(official_keys() + [f"{key}.weight"], 0)
    with pytest.raises(CheckpointKeyError, match="mapped twice"):
        map_official_state_dict(state)


def test_missing_and_extra_keys_are_listed(text_adapter):
    model = text_adapter.model
    official = to_official_state_dict(trained_state_dict(model))
    gone = f"{LLAMA}.1.self_attn.v_proj.lora_B.default.weight"
    del official[gone]
    official[f"{LLAMA}.7.self_attn.q_proj.lora_A.default.weight"] = torch.zeros(8, 32)
    with pytest.raises(CheckpointKeyError) as err:
        load_salmonn_weights(model, map_official_state_dict(official), "synthetic")
    message = str(err.value)
    assert "llm.base_model.model.layers.1.self_attn.v_proj.lora_B.default.weight" in message
    assert "llm.base_model.model.layers.7.self_attn.q_proj.lora_A.default.weight" in message


def test_shape_mismatch_is_reported(text_adapter):
    official = to_official_state_dict(trained_state_dict(text_adapter.model))
    official["speech_llama_proj.weight"] = torch.zeros(64, 32)
    with pytest.raises(CheckpointKeyError, match="shape mismatch"):
        load_salmonn_weights(text_adapter.model, map_official_state_dict(official), "synthetic")


def test_loaded_weights_match_the_checkpoint(tiny_salmonn, speech_adapter):
    """Module attributes (not the mapping) hold the checkpoint's tensors."""
    from transformers import LlamaModel, WhisperModel

    state = read_salmonn_checkpoint(tiny_salmonn / "salmonn.pth")
    model = speech_adapter.model
    llm = model.llm_base
    pairs = {
        f"{QF}.encoder.layer.1.crossattention.self.key.weight": (
            model.qformer.encoder.layer[1].crossattention.attention.key.weight
        ),
        f"{QF}.encoder.layer.0.output_query.LayerNorm.bias": (
            model.qformer.encoder.layer[0].output_query.LayerNorm.bias
        ),
        f"{QF}.embeddings.LayerNorm.weight": model.qformer.layernorm.weight,
        "speech_query_tokens": model.query_tokens,
        "speech_llama_proj.weight": model.proj.weight,
        "ln_audio.bias": model.ln_audio.bias,
        f"{LLAMA}.1.self_attn.v_proj.lora_B.default.weight": (
            llm.layers[1].self_attn.v_proj.lora_B["default"].weight
        ),
        f"{LLAMA}.0.self_attn.q_proj.lora_A.default.weight": (
            llm.layers[0].self_attn.q_proj.lora_A["default"].weight
        ),
    }
    for key, param in pairs.items():
        torch.testing.assert_close(param.detach(), state[key])
    assert llm.layers[1].self_attn.v_proj.lora_B["default"].weight.abs().sum() > 0
    whisper = WhisperModel.from_pretrained(tiny_salmonn / "whisper").encoder
    torch.testing.assert_close(
        model.speech_encoder.layers[1].fc1.weight, whisper.layers[1].fc1.weight
    )
    base = LlamaModel.from_pretrained(tiny_salmonn / "llm")
    torch.testing.assert_close(
        llm.layers[0].mlp.down_proj.weight, base.layers[0].mlp.down_proj.weight
    )
    beats = torch.load(tiny_salmonn / "beats.pt", weights_only=True)["model"]
    torch.testing.assert_close(
        model.beats.encoder.layers[1].self_attn.grep_a, beats["encoder.layers.1.self_attn.grep_a"]
    )


# --------------------------------------------------------------------------- taps and pooling
def test_taps_and_shapes(text_adapter, speech_adapter, speech_out):
    layers = [f"layer{i:02d}" for i in range(3)]
    assert text_adapter.taps("text") == layers
    assert speech_adapter.taps("speech") == [*layers, "qformer_in", "qformer_out"]
    text = text_adapter.encode(SENTENCES["eng_Latn"], "eng_Latn", "text")
    assert set(text.vectors) == set(layers)
    for tap in layers:
        assert text.vectors[tap].shape == (3, 32) and text.vectors[tap].dtype == np.float32
        assert speech_out.vectors[tap].shape == (3, 32)
    assert speech_out.vectors["qformer_in"].shape == (3, 64)  # Whisper 32 + BEATs 32
    assert speech_out.vectors["qformer_out"].shape == (3, 32)


def test_text_pools_exactly_the_transcript_tokens(text_adapter):
    sentences = SENTENCES["deu_Latn"]
    out = text_adapter.encode(sentences, "deu_Latn", "text")
    counts = text_adapter.text_lengths(sentences, "deu_Latn")
    tok = text_adapter.tokenizer
    assert counts == [len(tok(s, add_special_tokens=False)["input_ids"]) for s in sentences]
    for tap in text_adapter.taps("text"):
        np.testing.assert_array_equal(out.lengths[tap], counts)
    # layer00 is the plain mean of the transcript's token embeddings: no BOS, no prompt
    embed = text_adapter.model.llm_base.embed_tokens.weight.detach()
    for i, sentence in enumerate(sentences):
        ids = tok(sentence, add_special_tokens=False)["input_ids"]
        expected = embed[ids].mean(dim=0).numpy()
        np.testing.assert_allclose(out.vectors["layer00"][i], expected, atol=1e-6)


def test_prompt_is_context_but_not_pooled(tiny_salmonn, text_adapter):
    """The text before the content conditions it without being pooled; the instruction
    comes after the content, so the causal LLM's pooled states cannot see it."""
    sentences = SENTENCES["eng_Latn"]
    base = text_adapter.encode(sentences, "eng_Latn", "text").vectors
    template = "SYSTEM: Be brief. USER: <Speech><SpeechHere></Speech> {}\nASSISTANT:"
    left = load_adapter(spec(tiny_salmonn, options={"template": template}), "text", CPU)
    changed = left.encode(sentences, "eng_Latn", "text").vectors
    np.testing.assert_array_equal(base["layer00"], changed["layer00"])
    assert not np.allclose(base["layer02"], changed["layer02"], atol=1e-4)
    right = load_adapter(spec(tiny_salmonn, options={"prompt": "Translate it."}), "text", CPU)
    after = right.encode(sentences, "eng_Latn", "text").vectors
    for tap, vec in base.items():
        np.testing.assert_allclose(vec, after[tap], atol=1e-6)


def test_windows_cover_only_real_audio(speech_out):
    frames = [math.ceil(n / 320) for n in LENGTHS]  # 50 Hz Whisper frames
    windows = [math.ceil(f / WINDOW) for f in frames]
    assert windows == [5, 2, 3] and all(w < N_WINDOWS for w in windows)
    assert [real_windows(n) for n in LENGTHS] == windows
    np.testing.assert_array_equal(speech_out.lengths["qformer_in"], frames)
    for tap in ("layer00", "layer01", "layer02", "qformer_out"):
        np.testing.assert_array_equal(speech_out.lengths[tap], windows)
    # the speech tokens the LLM reads at the pooled positions are the Q-Former output
    np.testing.assert_allclose(
        speech_out.vectors["layer00"], speech_out.vectors["qformer_out"], atol=1e-6
    )


def test_pooled_windows_are_the_first_ones(speech_adapter, waves):
    model = speech_adapter.model
    with torch.inference_mode():
        features, _ = model.audio_features(waves[1:2])
        tokens = model.speech_tokens(features)
    assert tokens.shape[1] == N_WINDOWS == 88
    out = speech_adapter.encode(waves[1:2], "eng_Latn", "speech")
    k = real_windows(len(waves[1]))
    np.testing.assert_allclose(out.vectors["qformer_out"][0], tokens[0, :k].mean(0), atol=1e-6)
    assert not np.allclose(out.vectors["qformer_out"][0], tokens[0].mean(0), atol=1e-4)


def test_qformer_input_layout(speech_adapter, waves):
    """Whisper frames (after ln_speech) next to BEATs tokens (after ln_audio, then zeros)."""
    from gapscope.models.beats import n_beats_tokens

    model = speech_adapter.model
    wave = waves[0]
    with torch.inference_mode():
        features, frames = model.audio_features([wave])
        mel = model.feature_extractor([wave], sampling_rate=16000, return_tensors="pt")
        whisper = model.ln_speech(model.speech_encoder(mel.input_features).last_hidden_state)
        beats = model.ln_audio(model.beats(torch.from_numpy(wave)))
    assert features.shape == (1, 1500, 64) and frames.tolist() == [75]
    torch.testing.assert_close(features[0, :, :32], whisper[0])
    n = n_beats_tokens(len(wave))
    assert beats.shape[1] == n == 72  # 148 fbank frames -> 9 x 8 patches
    torch.testing.assert_close(features[0, :n, 32:], beats[0])
    assert features[0, n:, 32:].abs().max() == 0


def test_all_windows_variant(tiny_salmonn, waves, speech_out):
    adapter = load_adapter(spec(tiny_salmonn, options={"speech_windows": "all"}), "speech", CPU)
    out = adapter.encode(waves, "eng_Latn", "speech")
    np.testing.assert_array_equal(out.lengths["qformer_out"], [N_WINDOWS] * 3)
    np.testing.assert_array_equal(out.lengths["qformer_in"], [1500] * 3)
    assert not np.allclose(out.vectors["layer02"], speech_out.vectors["layer02"], atol=1e-4)


def test_padded_batch_equals_one_at_a_time_text(text_adapter):
    sentences = SENTENCES["zho_Hans"] + SENTENCES["eng_Latn"]
    batch = text_adapter.encode(sentences, "zho_Hans", "text")
    for i, sentence in enumerate(sentences):
        single = text_adapter.encode([sentence], "zho_Hans", "text")
        for tap, vec in batch.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)


def test_padded_batch_equals_one_at_a_time_speech(speech_adapter, waves, speech_out):
    for i, wave in enumerate(waves):
        single = speech_adapter.encode([wave], "eng_Latn", "speech")
        for tap, vec in speech_out.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)
            assert speech_out.lengths[tap][i] == single.lengths[tap][0]


def test_audio_longer_than_30_s_is_refused(speech_adapter):
    with pytest.raises(ValueError, match="longer than SALMONN's 30 s"):
        speech_adapter.encode([np.zeros(16000 * 30 + 1, np.float32)], "eng_Latn", "speech")


# --------------------------------------------------------------------------- init and loading
def test_random_init_is_seeded_shared_and_differs(tiny_salmonn, text_adapter, waves):
    a = load_adapter(spec(tiny_salmonn, init="random", seed=1), "text", CPU)
    b = load_adapter(spec(tiny_salmonn, init="random", seed=1), "text", CPU)
    c = load_adapter(spec(tiny_salmonn, init="random", seed=2), "text", CPU)
    sentences = SENTENCES["eng_Latn"]
    va, vb, vc = (m.encode(sentences, "eng_Latn", "text").vectors["layer02"] for m in (a, b, c))
    vp = text_adapter.encode(sentences, "eng_Latn", "text").vectors["layer02"]
    np.testing.assert_array_equal(va, vb)
    assert not np.allclose(va, vc) and not np.allclose(va, vp)
    # the speech model of the same seed has the same random LLM and speech branch
    s = load_adapter(spec(tiny_salmonn, init="random", seed=1), "speech", CPU)
    shared = {**trained_state_dict(a.model), **a.model.llm_base.state_dict()}
    other = {**trained_state_dict(s.model), **s.model.llm_base.state_dict()}
    for key, value in shared.items():
        torch.testing.assert_close(value, other[key])
    assert s.encode(waves[:1], "eng_Latn", "speech").vectors["layer02"].shape == (1, 32)


def _copy_with_checkpoint(src: Path, dst: Path, write) -> Path:
    dst.mkdir()
    options = json.loads((src / "salmonn_options.json").read_text())
    options = {k: str(src / v) if isinstance(v, str) else v for k, v in options.items()}
    (dst / "salmonn_options.json").write_text(json.dumps(options))
    write(dst)
    return dst


class Payload:
    """Any non-tensor class: weights_only unpickling must refuse it."""


def test_pickled_objects_are_refused(tmp_path, tiny_salmonn):
    state = torch.load(tiny_salmonn / "salmonn.pth", weights_only=True)

    def write(folder):
        torch.save({**state, "payload": Payload()}, folder / "salmonn.pth")

    folder = _copy_with_checkpoint(tiny_salmonn, tmp_path / "evil", write)
    with pytest.raises(ValueError, match="weights_only=True"):
        load_adapter(spec(folder), "text", CPU)


def test_safetensors_checkpoint_loads_the_same(tmp_path, tiny_salmonn, text_adapter):
    from safetensors.torch import save_file

    state = read_salmonn_checkpoint(tiny_salmonn / "salmonn.pth")
    folder = _copy_with_checkpoint(
        tiny_salmonn,
        tmp_path / "st",
        lambda f: save_file(state, str(f / "salmonn_tiny.safetensors")),
    )
    adapter = load_adapter(spec(folder), "text", CPU)
    sentences = SENTENCES["eng_Latn"]
    np.testing.assert_array_equal(
        adapter.encode(sentences, "eng_Latn", "text").vectors["layer02"],
        text_adapter.encode(sentences, "eng_Latn", "text").vectors["layer02"],
    )


@pytest.mark.parametrize(
    "part, keep, modality",
    [
        ("llm", lambda key: not key.startswith("model.layers.1."), "text"),
        # an encoder saved on its own: its keys lack the "encoder." prefix WhisperModel reads
        ("whisper", lambda key: key.startswith("encoder."), "speech"),
    ],
)
def test_component_without_all_weights_is_refused(tmp_path, tiny_salmonn, part, keep, modality):
    """transformers would fill the missing weights with random values and carry on."""
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(tiny_salmonn, tmp_path / "copy")  # component paths are relative
    weights = load_file(folder / part / "model.safetensors")
    kept = {key.removeprefix("encoder."): v for key, v in weights.items() if keep(key)}
    save_file(kept, str(folder / part / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=rf"{part}: lacks \d+ weights that"):
        load_adapter(spec(folder), modality, CPU)


def test_pad_token_beyond_the_embeddings(tmp_path, tiny_salmonn, text_adapter):
    """SALMONN's code adds [PAD] to Vicuna's tokenizer: an id with no embedding row."""
    from transformers import AutoTokenizer

    folder = shutil.copytree(tiny_salmonn, tmp_path / "copy")
    tokenizer = AutoTokenizer.from_pretrained(folder / "llm")
    tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    tokenizer.save_pretrained(folder / "llm")
    adapter = load_adapter(spec(folder), "text", CPU)
    assert adapter.tokenizer.pad_token_id >= adapter.model.llm_base.embed_tokens.num_embeddings
    sentences = SENTENCES["eng_Latn"]  # unequal lengths: the batch is padded
    np.testing.assert_array_equal(
        adapter.encode(sentences, "eng_Latn", "text").vectors["layer02"],
        text_adapter.encode(sentences, "eng_Latn", "text").vectors["layer02"],
    )


def test_options_are_checked(tmp_path, tiny_salmonn):
    with pytest.raises(ValueError, match="unknown SALMONN option"):
        load_adapter(spec(tiny_salmonn, options={"lora_rank": 4}), "text", CPU)
    folder = tmp_path / "nobeats"
    folder.mkdir()
    shutil.copy(tiny_salmonn / "salmonn.pth", folder / "salmonn.pth")
    with pytest.raises(ValueError, match="options.beats"):
        load_adapter(spec(folder), "text", CPU)
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_adapter(spec(tiny_salmonn, trust_remote_code=True), "text", CPU)


def test_family_pairs():
    family = FAMILIES["salmonn"]
    assert family.supports("amh_Ethi", "speech") and family.supports("zho_Hans", "text")
    text = [f"layer{i:02d}" for i in range(3)]
    speech = [*text, "qformer_in", "qformer_out"]
    pairs = cross_modal_pairs("salmonn", text, speech)
    assert pairs == [(t, t) for t in text] + [("layer00", "qformer_in"), ("layer00", "qformer_out")]
    assert family.length_adaptation == (("layer00", "qformer_in"), ("layer00", "qformer_out"))


# --------------------------------------------------------------------------- BEATs
def reference_waveform() -> torch.Tensor:
    t = torch.arange(16000, dtype=torch.float64) / 16000
    wave = 0.3 * torch.sin(2 * math.pi * 220 * t) + 0.1 * torch.sin(
        2 * math.pi * 1375 * t + 3 * torch.sin(2 * math.pi * 3 * t)
    )
    # broadband noise keeps every mel bin well above float32 rounding (RandomState's stream
    # is frozen across NumPy versions)
    noise = torch.from_numpy(np.random.RandomState(0).standard_normal(16000))
    return (wave + 0.02 * noise).float()


# the BEATs config that data/salmonn_beats_reference.npz was computed with: pinned to that
# stored output, so it stays apart from the tiny builder's TINY_BEATS even while they agree
REFERENCE_BEATS = dict(
    encoder_layers=2,
    encoder_embed_dim=32,
    encoder_ffn_embed_dim=64,
    encoder_attention_heads=4,
    embed_dim=24,
    conv_pos=16,
    conv_pos_groups=4,
    relative_position_embedding=True,
    gru_rel_pos=True,
    num_buckets=32,
    max_distance=64,
    deep_norm=True,
)


def reference_state_dict(keys_and_shapes) -> dict:
    """Deterministic weights without an RNG, so another implementation can load the same.

    The relative position table is one module shared by all layers, so its copies under each
    layer's name get the same values.
    """
    shared = re.compile(r"layers\.\d+\.self_attn\.relative_attention_bias")

    def canonical(key: str) -> str:
        return shared.sub("layers.0.self_attn.relative_attention_bias", key)

    order = {k: i for i, k in enumerate(sorted({canonical(k) for k, _ in keys_and_shapes}))}
    state = {}
    for key, shape in keys_and_shapes:
        n = int(np.prod(shape)) if shape else 1
        phase = 1.3 * (order[canonical(key)] + 1)
        values = torch.sin(0.7 * torch.arange(n, dtype=torch.float64) + phase)
        if key.endswith(("layer_norm.weight", "weight_g", "grep_a")):
            values = 1.0 + 0.1 * values
        else:
            values = 0.2 * values
        state[key] = values.float().reshape(shape)
    return state


def test_beats_matches_the_reference_implementation():
    """Our BEATs vs openbeats' port of Microsoft's BEATs (stored output, same weights)."""
    from gapscope.models.beats import BeatsConfig, BeatsEncoder

    reference = np.load(REFERENCE)
    encoder = BeatsEncoder(BeatsConfig.from_dict(REFERENCE_BEATS)).eval()
    shapes = [(k, tuple(v.shape)) for k, v in encoder.state_dict().items()]
    encoder.load_state_dict(reference_state_dict(shapes), strict=True)
    with torch.inference_mode():
        out = encoder(reference_waveform())[0].numpy()
    assert out.shape == reference["beats_out"].shape == (48, 32)
    np.testing.assert_allclose(out, reference["beats_out"], atol=1e-4, rtol=0)


def test_fbank_matches_kaldi():
    """Our Kaldi fbank vs kaldi-native-fbank (80 bins: Kaldi refuses 128 bins at 512 FFT)."""
    from gapscope.models.beats import n_beats_tokens
    from gapscope.models.fbank import kaldi_fbank, n_fbank_frames

    reference = np.load(REFERENCE)["kaldi_fbank_80"]
    ours = kaldi_fbank(reference_waveform() * 2**15, n_mels=80).numpy()
    assert ours.shape == reference.shape == (n_fbank_frames(16000), 80) == (98, 80)
    np.testing.assert_allclose(ours, reference, atol=1e-3, rtol=0)
    assert n_beats_tokens(16000) == 48


# --------------------------------------------------------------------------- pipeline
def test_extract_view_stores_every_tap(tmp_path, speech_adapter, text_adapter, waves, speech_out):
    import pandas as pd
    import soundfile as sf

    from gapscope import extract
    from gapscope.store import ViewWriter, open_view

    rows = []
    for i, wave in enumerate(waves):
        sf.write(tmp_path / f"{i}.wav", wave, 16000, subtype="FLOAT")
        text = SENTENCES["eng_Latn"][i]
        rows.append((i, 0, text, str(tmp_path / f"{i}.wav"), len(wave)))
    columns = ["sentence_id", "recording", "text", "audio", "num_samples"]
    manifest = pd.DataFrame(rows, columns=columns)
    attrs = {
        "model": "tiny_salmonn",
        "adapter": "salmonn",
        "checkpoint": "x",
        "revision": None,
        "init": "pretrained",
        "dtype": "float32",
        "language": "eng_Latn",
        "pooling": "masked_mean",
    }
    for modality, adapter, budget in (
        ("speech", speech_adapter, 40000),
        ("text", text_adapter, 64),
    ):
        taps = adapter.taps(modality)
        path = tmp_path / f"{modality}.zarr"
        writer = ViewWriter(path, [0, 1, 2], {**attrs, "modality": modality, "taps": taps})
        extract.extract_view(
            adapter,
            manifest,
            writer,
            language="eng_Latn",
            modality=modality,
            budget=budget,
            progress=False,
        )
        view = open_view(path)
        assert list(view.taps) == taps
        if modality == "speech":
            for tap in taps:
                np.testing.assert_allclose(view.read(tap), speech_out.vectors[tap], atol=1e-5)
                np.testing.assert_array_equal(view.lengths(tap), speech_out.lengths[tap])
        else:
            counts = adapter.text_lengths(SENTENCES["eng_Latn"], "eng_Latn")
            np.testing.assert_array_equal(view.lengths("layer02"), counts)
