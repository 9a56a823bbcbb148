"""SONAR adapter on tiny real-architecture encoders, loaded as asset cards through fairseq2.

Runs only in the SONAR environment (``.venv-sonar/bin/python -m pytest tests/sonar``); the
main suite skips this folder (pyproject addopts) and runs it through tests/test_sonar.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from gapscope import languages
from gapscope.models import ModelSpec, load_adapter
from gapscope.stages import extract as extract_stage
from gapscope.store import open_view

from ..conftest import SENTENCES

pytest.importorskip("fairseq2", reason="needs the SONAR environment (envs/install_sonar.sh)")

CPU = torch.device("cpu")
SPEECH_CODES = ["eng", "deu"]


@pytest.fixture(scope="session")
def tiny_sonar(tmp_path_factory):
    from ..builders.sonar_tiny import build_tiny_sonar

    codes = [lang.sonar_text for lang in languages.load_table().values() if lang.sonar_text]
    texts = [s for group in SENTENCES.values() for s in group]
    return build_tiny_sonar(tmp_path_factory.mktemp("sonar"), texts, codes, SPEECH_CODES)


def spec(path, **kw) -> ModelSpec:
    return ModelSpec(name="tiny", adapter="sonar", checkpoint=str(path), **kw)


@pytest.fixture(scope="module")
def text_adapter(tiny_sonar):
    return load_adapter(spec(tiny_sonar), "text", CPU)


@pytest.fixture(scope="module")
def speech_adapter(tiny_sonar):
    return load_adapter(spec(tiny_sonar), "speech", CPU)


@pytest.fixture(scope="module")
def speech_waves():
    rng = np.random.default_rng(0)
    t = [np.arange(n) / 16000 for n in (24000, 9000, 16000, 9001)]
    return [
        (0.3 * np.sin(2 * np.pi * (150 + 50 * i) * x) + 0.02 * rng.standard_normal(x.size)).astype(
            np.float32
        )
        for i, x in enumerate(t)
    ]


# -- text ----------------------------------------------------------------------------------


def test_text_taps_shapes_and_lengths(text_adapter):
    taps = text_adapter.taps("text")
    assert taps == ["layer00", "layer01", "layer02", "layer03", "pooled"]
    sentences = SENTENCES["eng_Latn"]
    out = text_adapter.encode(sentences, "eng_Latn", "text")
    assert list(out.vectors) == taps
    counts = np.array(text_adapter.text_lengths(sentences, "eng_Latn"))
    for tap in taps:
        assert out.vectors[tap].shape == (3, 32)
        assert out.vectors[tap].dtype == np.float32
    for tap in taps[:-1]:  # language tag and </s> are not pooled in layer taps
        np.testing.assert_array_equal(out.lengths[tap], counts - 2)
    np.testing.assert_array_equal(out.lengths["pooled"], counts)  # SONAR pools every token


def test_text_tokens_are_language_tag_then_eos(text_adapter):
    ids = text_adapter._token_ids(["Wir kauften frisches Brot."], "deu_Latn")[0]
    encoder = text_adapter.tokenizer.create_encoder(lang="deu_Latn", mode="source")
    assert encoder.prefix_indices.tolist() == [int(ids[0])]
    assert int(ids[-1]) == text_adapter.tokenizer.vocab_info.eos_idx


@pytest.mark.filterwarnings("ignore:For 3 input tensors:UserWarning")
def test_long_text_is_truncated_like_sonar(tiny_sonar):
    from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline

    adapter = load_adapter(spec(tiny_sonar), "text", CPU)
    adapter.max_len = 5
    sentences = SENTENCES["eng_Latn"]
    assert adapter.text_lengths(sentences, "eng_Latn") == [5, 5, 5]
    out = adapter.encode(sentences, "eng_Latn", "text")
    np.testing.assert_array_equal(out.lengths["layer01"], [4, 4, 4])  # tag out, no </s> left
    pipeline = TextToEmbeddingModelPipeline(adapter.model, adapter.tokenizer)
    reference = pipeline.predict(sentences, source_lang="eng_Latn", max_seq_len=5).numpy()
    np.testing.assert_allclose(out.vectors["pooled"], reference, atol=1e-5, rtol=0)


def test_text_pooled_is_sonar_sentence_embedding(text_adapter):
    from sonar.inference_pipelines.text import TextToEmbeddingModelPipeline

    pipeline = TextToEmbeddingModelPipeline(text_adapter.model, text_adapter.tokenizer)
    for language, sentences in SENTENCES.items():
        reference = pipeline.predict(sentences, source_lang=language, batch_size=2).numpy()
        ours = text_adapter.encode(sentences, language, "text").vectors["pooled"]
        np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_text_last_layer_is_what_sonar_normalises(text_adapter):
    """layerNN is the raw last block; SONAR's embedding is its LayerNorm, mean-pooled."""
    from fairseq2.nn import BatchLayout

    ids = text_adapter._token_ids(SENTENCES["eng_Latn"][:1], "eng_Latn")[0][None]
    out = text_adapter.model(ids, BatchLayout.of(ids))
    last = text_adapter.capture.tensors["layer03"]
    torch.testing.assert_close(text_adapter.model.layer_norm(last), out.encoded_seqs)
    torch.testing.assert_close(out.encoded_seqs.mean(dim=1), out.sentence_embeddings)


def test_padded_batch_equals_one_at_a_time_text(text_adapter):
    sentences = SENTENCES["zho_Hans"]
    batch = text_adapter.encode(sentences, "zho_Hans", "text")
    for i, sentence in enumerate(sentences):
        single = text_adapter.encode([sentence], "zho_Hans", "text")
        for tap, vec in batch.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)


def test_text_is_deterministic(text_adapter):
    a = text_adapter.encode(SENTENCES["deu_Latn"], "deu_Latn", "text")
    b = text_adapter.encode(SENTENCES["deu_Latn"], "deu_Latn", "text")
    for tap in a.vectors:
        np.testing.assert_array_equal(a.vectors[tap], b.vectors[tap])


# -- speech --------------------------------------------------------------------------------


def test_speech_taps_shapes_and_lengths(speech_adapter, speech_waves):
    taps = speech_adapter.taps("speech")
    assert taps == ["layer00", "layer01", "layer02", "pre_pooler", "pooled"]
    out = speech_adapter.encode(speech_waves, "eng_Latn", "speech")
    assert list(out.vectors) == taps
    seqs, lens = speech_adapter.fbank(speech_waves)
    assert seqs.shape[1] % 2 == 0 and seqs.shape[2] == 80
    frames = np.array(lens) // 2  # w2v-BERT stacks two fbank frames
    for tap in taps:
        assert out.vectors[tap].shape == (4, 32)
        np.testing.assert_array_equal(out.lengths[tap], frames)


def test_speech_pooled_is_sonar_speech_embedding(speech_adapter, speech_waves):
    from sonar.inference_pipelines.speech import SpeechToEmbeddingModelPipeline

    ours = speech_adapter.encode(speech_waves, "deu_Latn", "speech").vectors["pooled"]
    pipeline = SpeechToEmbeddingModelPipeline(speech_adapter.model)
    tensors = [torch.from_numpy(w)[None] for w in speech_waves]  # (channels, samples)
    reference = pipeline.predict(tensors, batch_size=3).numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-5, rtol=0)


def test_pre_pooler_is_the_mean_of_what_the_pooler_reads(speech_adapter, speech_waves):
    from fairseq2.nn import BatchLayout

    out = speech_adapter.encode(speech_waves[:1], "eng_Latn", "speech")
    seqs, lens = speech_adapter.fbank(speech_waves[:1])
    with torch.inference_mode():
        model_out = speech_adapter.model(seqs, BatchLayout.of(seqs, lens))
    expected = model_out.encoded_seqs[0, : lens[0] // 2].mean(dim=0).numpy()
    np.testing.assert_allclose(out.vectors["pre_pooler"][0], expected, atol=1e-5, rtol=0)


def test_padded_batch_equals_one_at_a_time_speech(speech_adapter, speech_waves):
    batch = speech_adapter.encode(speech_waves, "eng_Latn", "speech")
    for i, wave in enumerate(speech_waves):
        single = speech_adapter.encode([wave], "eng_Latn", "speech")
        for tap, vec in batch.vectors.items():
            np.testing.assert_allclose(vec[i], single.vectors[tap][0], atol=1e-5, rtol=0)


def test_speech_encoder_follows_the_language(speech_adapter, speech_waves):
    eng = speech_adapter.encode(speech_waves[:2], "eng_Latn", "speech")
    assert speech_adapter.language == "eng_Latn"
    assert len(speech_adapter.model.encoder_pooler.decoder.layers) == 1  # english arch
    deu = speech_adapter.encode(speech_waves[:2], "deu_Latn", "speech")
    assert speech_adapter.language == "deu_Latn"
    assert len(speech_adapter.model.encoder_pooler.decoder.layers) == 2  # non_english arch
    assert not np.allclose(eng.vectors["layer01"], deu.vectors["layer01"])
    assert len(speech_adapter.capture.handles) == 2 + 2  # old hooks removed: frontend + 2 + pooler


def test_speech_language_without_encoder_is_refused(speech_adapter, speech_waves):
    with pytest.raises(ValueError, match="no speech encoder for amh_Ethi"):
        speech_adapter.encode(speech_waves[:1], "amh_Ethi", "speech")
    with pytest.raises(ValueError, match="no asset card .sonar_speech_encoder_fra. in"):
        speech_adapter.encode(speech_waves[:1], "fra_Latn", "speech")


# -- loading -------------------------------------------------------------------------------


def test_init_random_is_seeded_and_not_the_checkpoint(tiny_sonar, text_adapter):
    sentences = SENTENCES["eng_Latn"]
    vec = {}
    for name, kw in {"a": {"seed": 1}, "b": {"seed": 1}, "c": {"seed": 2}}.items():
        adapter = load_adapter(spec(tiny_sonar, init="random", **kw), "text", CPU)
        vec[name] = adapter.encode(sentences, "eng_Latn", "text").vectors["layer02"]
    trained = text_adapter.encode(sentences, "eng_Latn", "text").vectors["layer02"]
    np.testing.assert_array_equal(vec["a"], vec["b"])
    assert not np.allclose(vec["a"], vec["c"])
    assert not np.allclose(vec["a"], trained)


def test_init_random_speech_has_the_card_architecture(tiny_sonar, speech_waves):
    adapter = load_adapter(spec(tiny_sonar, init="random"), "speech", CPU)
    out = adapter.encode(speech_waves[:1], "eng_Latn", "speech")
    assert list(out.vectors) == adapter.taps("speech")
    assert len(adapter.model.encoder_pooler.decoder.layers) == 1


def test_checkpoint_must_be_the_store_or_a_card_folder(tmp_path):
    with pytest.raises(ValueError, match="neither 'sonar'"):
        load_adapter(spec(tmp_path / "absent"), "text", CPU)


def test_store_cards_are_found_without_weights(tmp_path):
    """checkpoint: sonar resolves sonar-space's own cards (downloads happen only on load)."""
    from gapscope.models.sonar import SPEECH_FAMILY, TEXT_FAMILY, Cards

    cards = Cards(ModelSpec(name="real", adapter="sonar", checkpoint="sonar"))
    assert cards.get("text_sonar_basic_encoder", TEXT_FAMILY).name == "text_sonar_basic_encoder"
    with pytest.raises(ValueError, match="is a 'sonar_speech' model, expected"):
        cards.get("sonar_speech_encoder_eng", TEXT_FAMILY)
    with pytest.raises(ValueError, match="no asset card 'sonar_speech_encoder_xyz'"):
        cards.get("sonar_speech_encoder_xyz", SPEECH_FAMILY)


def test_every_table_language_has_a_sonar_card():
    """The language table's SONAR codes match sonar-space's cards."""
    from gapscope.models.sonar import SPEECH_FAMILY, TEXT_FAMILY, Cards

    cards = Cards(ModelSpec(name="real", adapter="sonar", checkpoint="sonar"))
    text = cards.get("text_sonar_basic_encoder", TEXT_FAMILY)
    langs = set(text.field("tokenizer_config").value["_set_"]["langs"])
    table = languages.load_table().values()
    assert {lang.sonar_text for lang in table if lang.sonar_text} <= langs
    missing = set()
    for lang in table:
        if lang.sonar_speech:
            try:
                cards.get(f"sonar_speech_encoder_{lang.sonar_speech}", SPEECH_FAMILY)
            except ValueError:
                missing.add(lang.sonar_speech)
    # The SONAR README lists a Swedish speech encoder, but sonar-space 0.5.0 ships no card
    # for it: Swedish speech needs a user card (README, SONAR section). Nothing else is missing.
    assert missing == {"swe"}


def test_unrestricted_unpickling_needs_trust(tiny_sonar, tmp_path):
    folder = tmp_path / "cards"
    shutil.copytree(tiny_sonar, folder)
    text = (folder / "cards.yaml").read_text()
    (folder / "cards.yaml").write_text(
        text.replace("model_arch: basic", "model_arch: basic\nrestrict: false", 1)
    )
    with pytest.raises(ValueError, match="restrict: false"):
        load_adapter(spec(folder), "text", CPU)
    load_adapter(spec(folder, trust_remote_code=True), "text", CPU)


def test_unknown_option_is_refused(tiny_sonar):
    with pytest.raises(ValueError, match=r"models.tiny.options: unknown key\(s\) \['pooling'\]"):
        load_adapter(spec(tiny_sonar, options={"pooling": "max"}), "text", CPU)


def test_options_select_cards(tiny_sonar, tmp_path):
    folder = tmp_path / "cards"
    shutil.copytree(tiny_sonar, folder)
    text = (folder / "cards.yaml").read_text()
    (folder / "cards.yaml").write_text(
        text.replace("name: text_sonar_basic_encoder", "name: my_text_encoder").replace(
            "name: sonar_speech_encoder_deu", "name: my_speech_deu"
        )
    )
    opts = {"text_encoder": "my_text_encoder", "speech_encoder": "my_speech_{lang}"}
    assert load_adapter(spec(folder, options=opts), "text", CPU).taps()[-1] == "pooled"
    speech = load_adapter(spec(folder, options=opts), "speech", CPU)
    speech.encode([np.zeros(8000, np.float32) + 0.01], "deu_Latn", "speech")
    with pytest.raises(ValueError, match="my_speech_eng"):
        speech.encode([np.zeros(8000, np.float32) + 0.01], "eng_Latn", "speech")


# -- extraction ----------------------------------------------------------------------------


def _manifest(tmp_path, waves, sentences):
    rows = []
    for i, (wave, text) in enumerate(zip(waves, sentences, strict=True)):
        path = tmp_path / f"{i}.wav"
        sf.write(path, wave, 16000, subtype="FLOAT")
        rows.append((100 + i, 0, text, str(path), len(wave)))
    return pd.DataFrame(rows, columns=["sentence_id", "recording", "text", "audio", "num_samples"])


def _model_params(path) -> dict:
    return {
        "name": "tiny",
        "adapter": "sonar",
        "checkpoint": str(path),
        "revision": None,
        "init": "pretrained",
        "dtype": "float32",
        "seed": 0,
        "trust_remote_code": False,
        "options": {},
        "pooling": "masked_mean",
        "recording": "first",
    }


@pytest.mark.parametrize("modality", ["text", "speech"])
def test_cli_writes_a_complete_store(tiny_sonar, tmp_path, speech_waves, modality):
    """The rule's command (workflow_scripts/extract_sonar.py) end to end, both modalities."""
    import subprocess
    import sys
    from pathlib import Path

    manifest = _manifest(tmp_path, speech_waves[:3], SENTENCES["eng_Latn"])
    manifest.to_csv(tmp_path / "manifest.tsv", sep="\t", index=False)
    script = Path(__file__).resolve().parents[2] / "workflow_scripts" / "extract_sonar.py"
    store, stats = tmp_path / f"{modality}.zarr", tmp_path / f"{modality}.json"
    args = [
        "--manifest", str(tmp_path / "manifest.tsv"),
        "--model", json.dumps(_model_params(tiny_sonar)),
        "--language", "eng_Latn", "--modality", modality,
        "--store", str(store), "--stats", str(stats), "--log", str(tmp_path / "log"),
        "--budget", "2000" if modality == "text" else "48000", "--chunk-size", "2",
    ]  # fmt: skip
    done = subprocess.run([sys.executable, str(script), *args], cwd="/", capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-3000:] + (tmp_path / "log").read_text()
    view = open_view(store)
    assert view.taps == load_adapter(spec(tiny_sonar), modality, CPU).taps(modality)
    np.testing.assert_array_equal(view.sentence_ids, [100, 101, 102])
    assert view.read("pooled").shape == (3, 32)
    assert json.loads(stats.read_text())["n_sentences"] == 3


def test_extraction_matches_direct_encoding(tiny_sonar, tmp_path, speech_adapter, speech_waves):
    manifest = _manifest(tmp_path, speech_waves, ["a b", "c d", "e f", "g h"])
    stats = extract_stage.run_view(
        manifest=manifest,
        model=_model_params(tiny_sonar),
        language="eng_Latn",
        modality="speech",
        store=str(tmp_path / "s.zarr"),
        budget=40000,
        chunk_size=3,
        device="cpu",
    )
    assert stats["n_sentences"] == 4
    view = open_view(tmp_path / "s.zarr")
    direct = speech_adapter.encode(speech_waves, "eng_Latn", "speech")
    for tap in view.taps:
        np.testing.assert_allclose(view.read(tap), direct.vectors[tap], atol=1e-5, rtol=0)


# -- cards and inputs from elsewhere -------------------------------------------------------


def _rewrite_cards(src, dst, edit) -> None:
    import yaml

    shutil.copytree(src, dst)
    cards = list(yaml.safe_load_all((dst / "cards.yaml").read_text()))
    (dst / "cards.yaml").write_text(yaml.safe_dump_all([edit(c) for c in cards], sort_keys=False))


def test_local_card_may_refine_the_store_card_of_its_name(tiny_sonar, tmp_path, text_adapter):
    """The offline route for real weights: a card named text_sonar_basic_encoder whose base is
    sonar-space's card of that name, with a local checkpoint (it used to recurse forever)."""

    def refine(card):
        if card["name"] == "text_sonar_basic_encoder":
            card = {k: v for k, v in card.items() if k not in ("model_family", "model_arch")}
            card["base"] = "text_sonar_basic_encoder"
        return card

    _rewrite_cards(tiny_sonar, tmp_path / "cards", refine)
    refined = load_adapter(spec(tmp_path / "cards"), "text", CPU)
    sentences = SENTENCES["deu_Latn"]
    np.testing.assert_array_equal(
        refined.encode(sentences, "deu_Latn").vectors["pooled"],
        text_adapter.encode(sentences, "deu_Latn").vectors["pooled"],
    )


def test_cards_naming_each_other_as_base_are_refused(tiny_sonar, tmp_path):
    def loop(card):
        if card["name"] == "sonar_speech_encoder_base":
            card["base"] = "sonar_speech_encoder_deu"
        return card

    _rewrite_cards(tiny_sonar, tmp_path / "cards", loop)
    with pytest.raises(ValueError, match="in a loop: .*sonar_speech_encoder_base"):
        load_adapter(spec(tmp_path / "cards"), "speech", CPU)


def test_too_short_or_stereo_audio_is_refused(speech_adapter):
    with pytest.raises(ValueError, match=r"input\(s\) \[1\] are too short .*\[400\] samples"):
        speech_adapter.encode([np.ones(800, np.float32), np.ones(400, np.float32)], "deu_Latn")
    with pytest.raises(ValueError, match=r"input 0 has shape \(800, 2\)"):
        speech_adapter.encode([np.ones((800, 2), np.float32)], "deu_Latn")
    assert speech_adapter.encode([np.ones(560, np.float32)], "deu_Latn").lengths["pooled"] == [1]
