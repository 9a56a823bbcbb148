"""SeamlessM4T adapters on a tiny real architecture, saved and loaded back offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gapscope.models import ModelSpec, cross_modal_pairs, load_adapter
from gapscope.models.base import masked_mean

from .conftest import SENTENCES

CPU = torch.device("cpu")


def spec(path, **kw) -> ModelSpec:
    return ModelSpec(name="tiny", adapter="seamless_m4t_v2", checkpoint=str(path), **kw)


@pytest.fixture(scope="module")
def text_adapter(tiny_seamless):
    return load_adapter(spec(tiny_seamless), "text", CPU)


@pytest.fixture(scope="module")
def speech_adapter(tiny_seamless):
    return load_adapter(spec(tiny_seamless), "speech", CPU)


def test_text_taps_shapes_and_lengths(text_adapter):
    taps = text_adapter.taps("text")
    assert taps == [f"layer{i:02d}" for i in range(5)] + ["encoder_out"]
    sentences = SENTENCES["eng_Latn"]
    out = text_adapter.encode(sentences, "eng_Latn", "text")
    assert set(out.vectors) == set(taps)
    counts = text_adapter.text_lengths(sentences, "eng_Latn")
    for tap in taps:
        assert out.vectors[tap].shape == (3, 64)
        assert out.vectors[tap].dtype == np.float32
        # language tag and </s> are not pooled
        np.testing.assert_array_equal(out.lengths[tap], np.array(counts) - 2)


def test_text_language_tag_is_first_and_eos_last(text_adapter):
    tok = text_adapter.processor.tokenizer
    ids = tok(["We bought fresh bread."], src_lang="deu")["input_ids"][0]
    assert tok.convert_ids_to_tokens(ids)[0] == "__deu__"
    assert tok.convert_ids_to_tokens(ids)[-1] == "</s>"


def test_padded_batch_equals_one_at_a_time_text(text_adapter):
    sentences = SENTENCES["zho_Hans"]
    batch = text_adapter.encode(sentences, "zho_Hans", "text")
    for i, sentence in enumerate(sentences):
        single = text_adapter.encode([sentence], "zho_Hans", "text")
        for tap, vec in batch.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)


def test_speech_taps_and_downsampled_mask(speech_adapter, waves):
    taps = speech_adapter.taps("speech")
    assert taps == [f"layer{i:02d}" for i in range(5)] + ["pre_adaptor", "post_adaptor"]
    out = speech_adapter.encode(waves, "eng_Latn", "speech")
    frames = out.lengths["layer00"]
    # 16 kHz -> 100 Hz fbank frames, stacked by 2 -> about 50 Hz
    np.testing.assert_allclose(frames, [len(w) / 320 for w in waves], atol=1.5)
    np.testing.assert_array_equal(out.lengths["pre_adaptor"], frames)
    # the adaptor (kernel 8, stride 8) shortens about 8x; the mask follows it
    post = out.lengths["post_adaptor"]
    assert all(1 <= p <= f // 8 + 1 for p, f in zip(post, frames, strict=True))
    assert out.vectors["post_adaptor"].shape == (3, 64)


def test_padded_batch_equals_one_at_a_time_speech(speech_adapter, waves):
    batch = speech_adapter.encode(waves, "eng_Latn", "speech")
    for i, wave in enumerate(waves):
        single = speech_adapter.encode([wave], "eng_Latn", "speech")
        for tap, vec in batch.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)
            assert batch.lengths[tap][i] == single.lengths[tap][0]


def textbook_fbank(wave: np.ndarray, extractor) -> np.ndarray:
    """SeamlessM4TFeatureExtractor's recipe frame by frame, all in float64/complex128."""
    x = np.asarray(wave, np.float32).astype(np.float64) * 2**15
    frames = []
    for start in range(0, len(x) - 400 + 1, 160):
        buf = x[start : start + 400].copy()
        buf -= buf.mean()
        buf[1:] -= 0.97 * buf[:-1].copy()
        buf[0] *= 1 - 0.97
        spec = np.fft.rfft(buf * extractor.window, n=512)
        power = spec.real**2 + spec.imag**2
        frames.append(np.log(np.maximum(1.192092955078125e-07, extractor.mel_filters.T @ power)))
    f = np.array(frames)
    return (f - f.mean(0)) / np.sqrt(f.var(0, ddof=1) + 1e-7)


@pytest.mark.parametrize("mel_bins", [80, 64])
def test_speech_features_equal_transformers_extractor(speech_adapter, waves, mel_bins):
    """Our frame-vectorised features vs a float64 textbook loop (1e-8) and vs transformers'
    SeamlessM4TFeatureExtractor itself (1e-3: it keeps the spectrum in complex64, which
    costs low-energy bins of a pure tone a few 1e-4), batched and alone, padding and mask
    included. Real espeak-ng speech, the conftest tones, odd lengths and short noise clips;
    64 mel bins checks that the extractor's own filters are used.
    """
    from transformers import SeamlessM4TFeatureExtractor

    from gapscope.corpus import tts
    from gapscope.models.seamless import speech_features

    extractor = (
        speech_adapter.processor.feature_extractor
        if mel_bins == 80
        else SeamlessM4TFeatureExtractor(feature_size=mel_bins, num_mel_bins=mel_bins)
    )
    rng = np.random.default_rng(1)
    speech = [
        tts.synthesize("Every sentence has a meaning of its own.", "eng_Latn"),
        tts.synthesize("Jeder Satz hat seine eigene Bedeutung.", "deu_Latn"),
    ]
    clips = [(0.2 * rng.standard_normal(n)).astype(np.float32) for n in (16_123, 4_000, 2_011)]
    for batch in ([*speech, *waves, *clips], speech[:1], clips[:1], waves[1:2]):
        ref = extractor(
            batch,
            sampling_rate=16_000,
            return_tensors="pt",
            padding=True,
            return_attention_mask=True,
        )
        features, mask, alone = speech_features(batch, extractor)
        assert features.shape == ref["input_features"].shape
        assert features.shape[-1] == 2 * mel_bins
        assert torch.equal(mask, ref["attention_mask"])
        for i, wave in enumerate(batch):  # stacked frames when extracted alone
            lone = extractor([wave], sampling_rate=16_000, return_tensors="pt", padding=True)
            assert alone[i] == lone["input_features"].shape[1]
        torch.testing.assert_close(
            features, ref["input_features"].to(torch.float64), atol=1e-3, rtol=0
        )
        for i, wave in enumerate(batch):
            exact = textbook_fbank(wave, extractor)
            ours = features[i].reshape(-1, mel_bins).numpy()  # frames, padding after them
            np.testing.assert_allclose(ours[: len(exact)], exact, atol=1e-8, rtol=0)
            assert np.all(ours[len(exact) :] == 0.0)


@pytest.mark.parametrize("samples", [13_200, 13_040, 14_480, 4_000])
def test_a_lone_utterance_gets_exactly_what_transformers_computes(speech_adapter, samples):
    """Every tap of an utterance equals transformers' own forward pass over it alone, in a
    batch with longer companions too. 13,200 samples give 81 fbank frames: odd, so alone it
    has a masked stacked frame (its last frame and padding) that the adaptor's stride-8
    convolutions read, and at 40 stacked frames that frame lands in a real output window;
    13,040 give 80 (even), 14,480 give 89 (odd, but its frame falls in no real window).
    """
    from gapscope.models.base import pool
    from gapscope.models.seamless import speech_features

    rng = np.random.default_rng(samples)
    wave = 0.3 * np.sin(np.arange(samples) / 9) + 0.1 * rng.standard_normal(samples)
    wave = wave.astype(np.float32)
    features, frames, alone = speech_features([wave], speech_adapter.processor.feature_extractor)
    assert features.shape[1] == alone[0]
    # transformers alone: the adapter's own model, its frame-zeroing hook idle
    speech_adapter.capture.tensors.clear()
    with torch.inference_mode():
        out = speech_adapter.encoder(input_features=features.float(), attention_mask=frames)
    tensors = {**speech_adapter.capture.tensors, "post_adaptor": out.last_hidden_state}
    masks = {tap: frames.bool() for tap in tensors}
    post = speech_adapter._adaptor_lengths(frames)
    masks["post_adaptor"] = torch.arange(out.last_hidden_state.shape[1])[None, :] < post[:, None]
    reference = pool(tensors, masks)
    companions = [rng.standard_normal(n).astype(np.float32) * 0.2 for n in (30_000, 21_000)]
    for batch, row in (([wave], 0), ([companions[0], wave, companions[1]], 1)):
        got = speech_adapter.encode(batch, "eng_Latn", "speech")
        for tap, vec in reference.vectors.items():
            np.testing.assert_allclose(got.vectors[tap][row], vec[0], atol=1e-5, rtol=0)


def test_last_layer_is_not_the_post_adaptor_output(speech_adapter, waves):
    """transformers ties the last hidden state to the adaptor output; our hooks must not."""
    out = speech_adapter.encode(waves[:1], "eng_Latn", "speech")
    last = out.vectors["layer04"][0]
    assert not np.allclose(last, out.vectors["post_adaptor"][0], atol=1e-3)
    assert not np.allclose(last, out.vectors["pre_adaptor"][0], atol=1e-3)


def test_loaded_weights_match_saved_model(tiny_seamless, text_adapter):
    from transformers import SeamlessM4Tv2Model

    saved = SeamlessM4Tv2Model.from_pretrained(tiny_seamless).text_encoder
    ids = torch.tensor([[5, 6, 7, 8]])
    expected = saved(input_ids=ids).last_hidden_state
    got = text_adapter.encoder(input_ids=ids).last_hidden_state
    torch.testing.assert_close(got, expected)


def test_random_init_is_seeded_and_differs_from_pretrained(tiny_seamless, text_adapter):
    a = load_adapter(spec(tiny_seamless, init="random", seed=1), "text", CPU)
    b = load_adapter(spec(tiny_seamless, init="random", seed=1), "text", CPU)
    c = load_adapter(spec(tiny_seamless, init="random", seed=2), "text", CPU)
    sentences = SENTENCES["eng_Latn"]
    va, vb, vc = (m.encode(sentences, "eng_Latn", "text").vectors["encoder_out"] for m in (a, b, c))
    vp = text_adapter.encode(sentences, "eng_Latn", "text").vectors["encoder_out"]
    np.testing.assert_array_equal(va, vb)
    assert not np.allclose(va, vc)
    assert not np.allclose(va, vp)


@pytest.mark.parametrize("modality", ["text", "speech"])
def test_random_control_has_the_weights_of_the_whole_model(tiny_seamless, modality):
    """Building less of the model must not change a control's seeded weights, or stores
    made before and after such a change would silently compare different models."""
    from transformers import AutoConfig

    from gapscope.models.seamless import _model_class

    torch.manual_seed(3)
    whole = _model_class("seamless_m4t_v2", modality)._from_config(
        AutoConfig.from_pretrained(tiny_seamless)
    )
    adapter = load_adapter(spec(tiny_seamless, init="random", seed=3), modality, CPU)
    expected = getattr(whole, f"{modality}_encoder").state_dict()
    got = getattr(adapter.model, f"{modality}_encoder").state_dict()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


def test_deterministic(text_adapter):
    first = text_adapter.encode(SENTENCES["deu_Latn"], "deu_Latn", "text").vectors["layer02"]
    again = text_adapter.encode(SENTENCES["deu_Latn"], "deu_Latn", "text").vectors["layer02"]
    np.testing.assert_array_equal(first, again)


def test_wrong_checkpoint_for_adapter_is_reported(tmp_path, tiny_seamless):
    from gapscope.models.demo import build_seamless_tiny

    v1 = build_seamless_tiny(tmp_path / "v1", ["a b c", "d e f"], ["eng"], version=1)
    expected = "'seamless_m4t' model but the adapter is 'seamless_m4t_v2'"
    with pytest.raises(ValueError, match=expected):
        load_adapter(spec(v1), "text", CPU)


def test_masked_mean_ignores_padding_and_rejects_empty_rows():
    hidden = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    torch.testing.assert_close(masked_mean(hidden, mask), torch.tensor([[2.0], [4.0]]))
    with pytest.raises(ValueError, match="no position"):
        masked_mean(hidden, torch.tensor([[0, 0, 0], [1, 1, 1]]))


def test_cross_modal_pairs_match_layers_and_named_taps():
    text = [f"layer{i:02d}" for i in range(4)] + ["encoder_out"]
    speech = [f"layer{i:02d}" for i in range(6)] + ["pre_adaptor", "post_adaptor"]
    pairs = cross_modal_pairs("seamless_m4t_v2", text, speech)
    assert pairs[:4] == [(f"layer{i:02d}", f"layer{i:02d}") for i in range(4)]
    assert pairs[4:] == [("encoder_out", "pre_adaptor"), ("encoder_out", "post_adaptor")]


def test_remote_code_only_when_asked(tiny_seamless, monkeypatch):
    import transformers

    seen = []
    original = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    load_adapter(spec(tiny_seamless), "text", CPU)
    default, seen[:] = list(seen), []
    load_adapter(spec(tiny_seamless, trust_remote_code=True), "text", CPU)
    assert default and set(default) == {False}  # every config read refuses remote code
    assert seen and set(seen) == {True}


# -- checkpoints laid out by others ------------------------------------------------------


@pytest.fixture(scope="module")
def sentencepiece_checkpoint(tmp_path_factory, tiny_seamless):
    """The tiny model with a tokenizer as the hub repos ship SeamlessM4T's: a SentencePiece
    model and tokenizer_config.json (fairseq ids: the four specials, then SentencePiece ids
    + 1, then the language tags as added special tokens), no tokenizer.json."""
    import json
    import shutil

    import sentencepiece as spm

    from gapscope import languages

    folder = tmp_path_factory.mktemp("hub_layout")
    for name in ("config.json", "model.safetensors", "processor_config.json"):
        shutil.copy(tiny_seamless / name, folder / name)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(s for group in SENTENCES.values() for s in group))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "sentencepiece.bpe"), vocab_size=80,
        hard_vocab_limit=False, model_type="bpe", character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    corpus.unlink()
    pieces = spm.SentencePieceProcessor(model_file=str(folder / "sentencepiece.bpe.model"))
    codes = sorted({lang.seamless for lang in languages.load_table().values() if lang.seamless})
    tags = [f"__{code}__" for code in codes]
    added = {0: "<pad>", 1: "<unk>", 2: "<s>", 3: "</s>"}
    added.update({pieces.get_piece_size() + 1 + i: tag for i, tag in enumerate(tags)})
    config = json.loads((tiny_seamless / "config.json").read_text())
    assert max(added) < config["vocab_size"]
    entry = dict(lstrip=False, rstrip=False, normalized=False, single_word=False, special=True)
    tokenizer_config = {
        "tokenizer_class": "SeamlessM4TTokenizer",
        "processor_class": "SeamlessM4TProcessor",
        "added_tokens_decoder": {str(i): {"content": t, **entry} for i, t in added.items()},
        "additional_special_tokens": tags,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "cls_token": "<s>", "sep_token": "</s>", "src_lang": "eng", "tgt_lang": "fra",
    }  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder, pieces


def test_sentencepiece_tokenizer_without_tokenizer_json(sentencepiece_checkpoint):
    """transformers converts the SentencePiece model (this needs protobuf); the tag comes
    first, ``</s>`` last, the pieces keep the fairseq offset, and only they are pooled."""
    folder, pieces = sentencepiece_checkpoint
    adapter = load_adapter(spec(folder), "text", CPU)
    tokenizer = adapter.processor.tokenizer
    for sentence in SENTENCES["deu_Latn"]:
        ids = tokenizer(sentence, src_lang="deu")["input_ids"]
        content = [i + 1 for i in pieces.encode(sentence)]
        assert ids == [tokenizer.convert_tokens_to_ids("__deu__"), *content, 3]
    out = adapter.encode(SENTENCES["deu_Latn"], "deu_Latn")
    expected = [len(pieces.encode(s)) for s in SENTENCES["deu_Latn"]]
    assert out.lengths["encoder_out"].tolist() == expected
    assert load_adapter(spec(folder), "speech", CPU).taps()[-1] == "post_adaptor"


def test_missing_language_tag_is_refused(tmp_path):
    """A tokenizer without ``__deu__`` would put ``<unk>`` in its place and carry on."""
    from gapscope.models.demo import build_seamless_tiny

    only_eng = build_seamless_tiny(tmp_path / "eng", SENTENCES["eng_Latn"], ["eng"])
    adapter = load_adapter(spec(only_eng), "text", CPU)
    assert adapter.encode(SENTENCES["eng_Latn"], "eng_Latn").lengths["encoder_out"].min() > 0
    with pytest.raises(ValueError, match=r"tokenizer of .* has no language tag __deu__"):
        adapter.text_lengths(SENTENCES["deu_Latn"], "deu_Latn")


WEIGHTS = ("config.json", "model.safetensors")
TOKENIZER = ("tokenizer.json", "tokenizer_config.json")


@pytest.mark.parametrize(
    "files, text, speech",
    [
        (WEIGHTS, "has no tokenizer;", "has no feature_extractor;"),
        # AutoProcessor then makes an empty default tokenizer (its special tokens only)
        ((*WEIGHTS, "processor_config.json"), "has no tokenizer;", None),
        # AutoProcessor then gives the bare tokenizer: enough for text
        ((*WEIGHTS, *TOKENIZER), None, "has no feature_extractor;"),
    ],
)
def test_checkpoint_without_its_processor_files(tmp_path, tiny_seamless, files, text, speech):
    import json
    import shutil

    for name in files:
        shutil.copy(tiny_seamless / name, tmp_path / name)
    if "tokenizer_config.json" in files:  # no processor files: no processor_class either
        path = tmp_path / "tokenizer_config.json"
        config = json.loads(path.read_text())
        config.pop("processor_class", None)
        path.write_text(json.dumps(config))
    for modality, match in (("text", text), ("speech", speech)):
        if match is None:
            adapter = load_adapter(spec(tmp_path), modality, CPU)
            inputs = SENTENCES["eng_Latn"] if modality == "text" else [np.ones(16000, np.float32)]
            assert adapter.encode(inputs, "eng_Latn").lengths["layer01"].min() > 0
        else:
            with pytest.raises(ValueError, match=match):
                load_adapter(spec(tmp_path), modality, CPU)


def test_feature_extractor_of_another_width_is_refused(tmp_path, tiny_seamless):
    """64 mel bins x stride 2 = 128 features, but the encoder reads 160: refused at load."""
    import json
    import shutil

    for item in tiny_seamless.iterdir():
        shutil.copy(item, tmp_path / item.name)
    path = tmp_path / "processor_config.json"
    config = json.loads(path.read_text())
    config["feature_extractor"].update(feature_size=64, num_mel_bins=64)
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"64 mel bins x stride 2 = 128 .* reads 160"):
        load_adapter(spec(tmp_path), "speech", CPU)
    assert load_adapter(spec(tmp_path), "text", CPU).taps()[-1] == "encoder_out"


def _weights_as(layout: str, src, dst) -> None:
    """Copy the tiny checkpoint with its weights as sharded safetensors or pytorch_model.bin."""
    import shutil

    from safetensors.torch import load_file

    for item in src.iterdir():
        if item.name != "model.safetensors":
            shutil.copy(item, dst / item.name)
    state = load_file(src / "model.safetensors")
    if layout == "bin":
        torch.save(state, dst / "pytorch_model.bin")
    else:
        from transformers import SeamlessM4Tv2Model

        SeamlessM4Tv2Model.from_pretrained(src).save_pretrained(dst, max_shard_size="200KB")
        assert len(list(dst.glob("model-*-of-*.safetensors"))) > 1


@pytest.mark.parametrize("layout", ["bin", "shards"])
def test_other_weight_files_give_the_same_vectors(tmp_path, tiny_seamless, layout, waves):
    _weights_as(layout, tiny_seamless, tmp_path)
    views = [("text", SENTENCES["eng_Latn"], "encoder_out"), ("speech", waves, "post_adaptor")]
    for modality, inputs, tap in views:
        got = load_adapter(spec(tmp_path), modality, CPU).encode(inputs, "eng_Latn")
        ref = load_adapter(spec(tiny_seamless), modality, CPU).encode(inputs, "eng_Latn")
        np.testing.assert_array_equal(got.vectors[tap], ref.vectors[tap])


def test_pickled_objects_are_not_unpickled(tmp_path, tiny_seamless):
    """pytorch_model.bin is read with weights_only: a file holding an object is refused."""
    _weights_as("bin", tiny_seamless, tmp_path)
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state["payload"] = np.random.default_rng(0)  # any non-tensor class
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(Exception, match="(?i)weights_only|unpickl"):
        load_adapter(spec(tmp_path), "text", CPU)


@pytest.mark.parametrize(
    "wave, match",
    [
        (np.zeros((16000, 2), np.float32), r"input 0 has shape \(16000, 2\)"),  # stereo
        (np.zeros(16000, np.int16), "dtype int16"),  # PCM integers, not scaled to [-1, 1]
        (np.zeros(0, np.float32), r"shape \(0,\)"),
    ],
)
def test_audio_other_than_mono_float_is_refused(speech_adapter, wave, match):
    with pytest.raises(ValueError, match=match):
        speech_adapter.encode([wave], "eng_Latn")


def test_only_the_needed_encoder_is_built_and_read(tiny_seamless, monkeypatch):
    """The text decoder (600 million weights in the large models) is never loaded."""
    import transformers

    built = {}
    for name in ("SeamlessM4Tv2ForTextToText", "SeamlessM4Tv2ForSpeechToText"):
        cls = getattr(transformers, name)
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            model, info = _original(klass, *args, **kwargs)
            built[klass.__name__] = (kwargs["config"].decoder_layers, info["unexpected_keys"])
            return model, info

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    for modality in ("text", "speech"):
        model = load_adapter(spec(tiny_seamless), modality, CPU).model
        assert not hasattr(model, "text_decoder") and not hasattr(model, "lm_head")
        assert hasattr(model, "shared") == (modality == "text")  # the text encoder's embeddings
    for layers, unexpected in built.values():
        assert layers == 0 and any(k.startswith("text_decoder.layers.") for k in unexpected)
    assert len(built) == 2
