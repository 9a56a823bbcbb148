"""Interrupted extraction: SIGKILL at several points, then resume to a bit-identical store."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from gapscope.stages import extract
from gapscope.store import StoreError, open_view, staging_path

from .conftest import SENTENCES

SENTS = [s for group in SENTENCES.values() for s in group] + ["One more.", "And the last one."]
LANGUAGE = "eng_Latn"

KILLER = textwrap.dedent(
    """
    import json, os, signal, sys
    import pandas as pd
    from gapscope import store
    from gapscope.stages import extract

    args = json.loads(sys.argv[1])
    where, count = args["where"], args["count"]
    calls = {"n": 0}

    def bump():
        calls["n"] += 1
        if calls["n"] == count:
            os.kill(os.getpid(), signal.SIGKILL)

    if where == "after_chunk":
        original = store.ViewWriter.write_chunk
        def patched(self, *a, **k):
            original(self, *a, **k)
            bump()
        store.ViewWriter.write_chunk = patched
    elif where == "mid_chunk":  # after the first tap of a chunk is on disk, before the rest
        original = store.ViewWriter._arrays
        def patched(self, *a, **k):
            bump()
            return original(self, *a, **k)
        store.ViewWriter._arrays = patched
    elif where == "before_complete":  # every chunk written, flag not yet set
        original = store._fsync_tree
        def patched(root):
            original(root)
            bump()
        store._fsync_tree = patched
    manifest = pd.read_json(args["manifest"])
    extract.run_view(manifest=manifest, **args["kwargs"])
    """
)


def model_dict(path) -> dict:
    return {
        "name": "tiny",
        "adapter": "seamless_m4t_v2",
        "checkpoint": str(path),
        "revision": None,
        "init": "pretrained",
        "dtype": "float32",
        "seed": 0,
        "trust_remote_code": False,
        "pooling": "masked_mean",
        "recording": "first",
        "options": {},
    }


@pytest.fixture(scope="module")
def setup(tiny_seamless, tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    manifest = pd.DataFrame(
        {
            "sentence_id": np.arange(1, len(SENTS) + 1),
            "recording": 0,
            "text": SENTS,
            "audio": "",
            "num_samples": -1,
        }
    )
    manifest_path = root / "manifest.json"
    manifest.to_json(manifest_path)
    kwargs = {
        "model": model_dict(tiny_seamless),
        "language": LANGUAGE,
        "modality": "text",
        "budget": 64,
        "chunk_size": 2,
        "device": "cpu",
    }
    reference = root / "reference.zarr"
    extract.run_view(manifest=manifest, store=str(reference), **kwargs)
    return root, manifest, manifest_path, kwargs, reference


def assert_identical(a, b):
    va, vb = open_view(a), open_view(b)
    assert va.taps == vb.taps
    np.testing.assert_array_equal(va.sentence_ids, vb.sentence_ids)
    for tap in va.taps:
        assert np.array_equal(va.read(tap), vb.read(tap)), tap  # bit for bit
        assert np.array_equal(va.lengths(tap), vb.lengths(tap))
    assert va.attrs == vb.attrs


@pytest.mark.parametrize(
    ("where", "count", "resumed"),
    [("after_chunk", 1, 2), ("after_chunk", 3, 6), ("mid_chunk", 9, 2), ("before_complete", 1, 11)],
)
def test_kill_and_resume(setup, tmp_path, where, count, resumed):
    root, manifest, manifest_path, kwargs, reference = setup
    store = tmp_path / "view.zarr"
    args = {
        "where": where,
        "count": count,
        "manifest": str(manifest_path),
        "kwargs": {**kwargs, "store": str(store)},
    }
    proc = subprocess.run([sys.executable, "-c", KILLER, json.dumps(args)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert not store.exists()  # nothing published
    with pytest.raises(StoreError, match="incomplete"):
        open_view(staging_path(store))  # never readable as finished
    stats = extract.run_view(manifest=manifest, store=str(store), **kwargs)
    assert stats["resumed_sentences"] == resumed
    assert stats["computed_inputs"] == len(SENTS) - resumed
    assert_identical(store, reference)
    assert not staging_path(store).exists()


def test_uninterrupted_runs_are_identical(setup, tmp_path):
    _, manifest, _, kwargs, reference = setup
    stats = extract.run_view(manifest=manifest, store=str(tmp_path / "again.zarr"), **kwargs)
    assert stats["resumed_sentences"] == 0
    assert_identical(tmp_path / "again.zarr", reference)


def test_partial_store_from_another_model_is_not_resumed(setup, tmp_path):
    _, manifest, manifest_path, kwargs, reference = setup
    store = tmp_path / "view.zarr"
    args = {
        "where": "after_chunk",
        "count": 2,
        "manifest": str(manifest_path),
        "kwargs": {**kwargs, "store": str(store), "model": {**kwargs["model"], "init": "random"}},
    }
    proc = subprocess.run([sys.executable, "-c", KILLER, json.dumps(args)], capture_output=True)
    assert proc.returncode == -9
    stats = extract.run_view(manifest=manifest, store=str(store), **kwargs)
    assert stats["resumed_sentences"] == 0
    assert_identical(store, reference)
