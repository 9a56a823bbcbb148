"""Extraction: length batching, chunked store writing, recording averaging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from gapscope import extract
from gapscope.models import ModelSpec, load_adapter
from gapscope.stages import extract as extract_stage
from gapscope.store import ViewWriter, open_view

from .conftest import SENTENCES


def test_plan_batches_sorts_and_respects_budget():
    lengths = [10, 50, 12, 48, 11, 49]
    plan = extract.plan_batches(lengths, budget=100)
    assert sorted(i for b in plan.batches for i in b) == list(range(6))
    for batch in plan.batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 100
    assert plan.batches[0] == [0, 4, 2]  # the short ones together
    assert plan.batches[1] == [3, 5]  # 48 and 49; 50 would exceed the budget of 100
    assert plan.padding_waste < 0.1


def test_plan_batches_bounds_length_ratio():
    plan = extract.plan_batches([10, 12, 13, 14, 30, 31], budget=10**6, max_ratio=1.3)
    assert plan.batches == [[0, 1, 2], [3], [4, 5]]


def test_plan_batches_oversized_sentence_gets_its_own_batch():
    plan = extract.plan_batches([10, 500, 12], budget=100)
    assert [1] in plan.batches


def test_padding_waste_small_on_realistic_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(20, 400, size=256).tolist()
    assert extract.plan_batches(lengths, budget=4096).padding_waste < 0.15


def _manifest(tmp_path, waves, ids, recordings=None):
    rows = []
    for i, (sid, wave) in enumerate(zip(ids, waves, strict=True)):
        path = tmp_path / f"{i}.wav"
        sf.write(path, wave, 16000, subtype="FLOAT")
        rows.append(
            (
                sid,
                0 if recordings is None else recordings[i],
                f"sentence {sid}",
                str(path),
                len(wave),
            )
        )
    return pd.DataFrame(rows, columns=["sentence_id", "recording", "text", "audio", "num_samples"])


ATTRS = {
    "model": "tiny",
    "adapter": "seamless_m4t_v2",
    "checkpoint": "x",
    "revision": None,
    "init": "pretrained",
    "dtype": "float32",
    "language": "eng_Latn",
    "pooling": "masked_mean",
}


@pytest.fixture(scope="module")
def speech(tiny_seamless):
    spec = ModelSpec(name="tiny", adapter="seamless_m4t_v2", checkpoint=str(tiny_seamless))
    return load_adapter(spec, "speech", torch.device("cpu"))


def test_extract_view_matches_direct_encoding_across_chunks(tmp_path, speech, waves):
    manifest = _manifest(tmp_path, waves, [30, 10, 20])
    taps = speech.taps("speech")
    writer = ViewWriter(
        tmp_path / "s.zarr",
        [10, 20, 30],
        {**ATTRS, "modality": "speech", "taps": taps},
        chunk_size=2,
    )
    stats = extract.extract_view(
        speech,
        manifest,
        writer,
        language="eng_Latn",
        modality="speech",
        budget=40000,
        progress=False,
    )
    assert stats["n_sentences"] == 3
    view = open_view(tmp_path / "s.zarr")
    np.testing.assert_array_equal(view.sentence_ids, [10, 20, 30])
    direct = speech.encode([waves[1], waves[2], waves[0]], "eng_Latn", "speech")
    for tap in taps:
        np.testing.assert_allclose(view.read(tap), direct.vectors[tap], atol=1e-5)
        np.testing.assert_array_equal(view.lengths(tap), direct.lengths[tap])


def test_recordings_are_averaged_per_id(tmp_path, speech, waves):
    manifest = _manifest(tmp_path, waves, [1, 1, 2], recordings=[0, 1, 0])
    taps = speech.taps("speech")
    writer = ViewWriter(tmp_path / "s.zarr", [1, 2], {**ATTRS, "modality": "speech", "taps": taps})
    extract.extract_view(
        speech,
        manifest,
        writer,
        language="eng_Latn",
        modality="speech",
        budget=10**6,
        progress=False,
    )
    view = open_view(tmp_path / "s.zarr")
    direct = speech.encode(waves, "eng_Latn", "speech")
    np.testing.assert_allclose(
        view.read("layer02")[0], direct.vectors["layer02"][:2].mean(0), atol=1e-5
    )
    np.testing.assert_allclose(view.read("layer02")[1], direct.vectors["layer02"][2], atol=1e-5)


def test_run_view_text_end_to_end(tmp_path, tiny_seamless):
    sentences = SENTENCES["deu_Latn"]
    manifest = pd.DataFrame(
        {
            "sentence_id": [3, 1, 2],
            "recording": 0,
            "text": sentences,
            "audio": "",
            "num_samples": -1,
        }
    )
    model = {
        "name": "tiny",
        "adapter": "seamless_m4t_v2",
        "checkpoint": str(tiny_seamless),
        "revision": None,
        "init": "pretrained",
        "dtype": "bfloat16",
        "seed": 0,
        "trust_remote_code": False,
        "options": {},
        "pooling": "masked_mean",
        "recording": "first",
    }
    stats = extract_stage.run_view(
        manifest=manifest,
        model=model,
        language="deu_Latn",
        modality="text",
        store=str(tmp_path / "t.zarr"),
        budget=64,
        chunk_size=2,
        device="cpu",
    )
    view = open_view(tmp_path / "t.zarr")
    assert stats["n_sentences"] == 3 and stats["sentences_per_second"] > 0
    assert view.taps[-1] == "encoder_out" and view.attrs["device"] == "cpu"
    np.testing.assert_array_equal(view.sentence_ids, [1, 2, 3])
    # row order follows ids: id 1 is the second sentence of the manifest
    again = extract_stage.run_view(
        manifest=manifest.iloc[[1]],
        model=model,
        language="deu_Latn",
        modality="text",
        store=str(tmp_path / "one.zarr"),
        budget=64,
        chunk_size=2,
        device="cpu",
    )
    assert again["n_sentences"] == 1
    np.testing.assert_allclose(
        open_view(tmp_path / "one.zarr").read("layer03")[0], view.read("layer03")[0], atol=1e-5
    )
