"""Activation store: layout, completeness flag, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from gapscope.store import StoreError, ViewWriter, open_view

ATTRS = {
    "model": "m",
    "adapter": "seamless_m4t_v2",
    "checkpoint": "ckpt",
    "revision": None,
    "init": "pretrained",
    "dtype": "float32",
    "language": "eng_Latn",
    "modality": "text",
    "pooling": "masked_mean",
    "taps": ["layer00", "layer01"],
}


def write(path, n=10, chunk=4, finish=True):
    rng = np.random.default_rng(0)
    data = {t: rng.standard_normal((n, 3)).astype(np.float32) for t in ATTRS["taps"]}
    writer = ViewWriter(path, list(range(100, 100 + n)), ATTRS, chunk_size=chunk)
    for start in range(0, n, chunk):
        block = {t: v[start : start + chunk] for t, v in data.items()}
        writer.write(start, block, {t: np.full(len(b), 5) for t, b in block.items()})
    if finish:
        writer.finalize(ATTRS["taps"])
    return data


def test_round_trip(tmp_path):
    data = write(tmp_path / "v.zarr")
    view = open_view(tmp_path / "v.zarr")
    assert view.taps == ["layer00", "layer01"]
    np.testing.assert_array_equal(view.sentence_ids, np.arange(100, 110))
    assert view.sentence_ids.dtype == np.int64
    for tap, values in data.items():
        np.testing.assert_array_equal(view.read(tap), values)
        assert view.read(tap).dtype == np.float32
        assert (view.lengths(tap) == 5).all() and view.lengths(tap).dtype == np.int32
    group = zarr.open_group(str(tmp_path / "v.zarr"), mode="r")
    assert group["taps"]["layer00"].chunks == (4, 3)
    assert view.attrs["complete"] is True
    assert view.attrs["language"] == "eng_Latn"
    assert "gapscope_version" in view.attrs


def test_incomplete_store_is_refused(tmp_path):
    write(tmp_path / "v.zarr", finish=False)
    with pytest.raises(StoreError, match="incomplete"):
        open_view(tmp_path / "v.zarr")


def test_missing_foreign_and_unknown_tap(tmp_path):
    with pytest.raises(StoreError, match="not found"):
        open_view(tmp_path / "none.zarr")
    foreign = zarr.open_group(str(tmp_path / "f.zarr"), mode="w")
    foreign.create_array("x", shape=(2,), dtype="float32")
    with pytest.raises(StoreError, match="not a gapscope activation store"):
        open_view(tmp_path / "f.zarr")
    (tmp_path / "junk.zarr").mkdir()
    with pytest.raises(StoreError):
        open_view(tmp_path / "junk.zarr")
    write(tmp_path / "v.zarr")
    with pytest.raises(StoreError, match="no tap 'layer09'"):
        open_view(tmp_path / "v.zarr").read("layer09")


def test_finalize_refuses_missing_taps(tmp_path):
    writer = ViewWriter(tmp_path / "v.zarr", [1, 2, 3], ATTRS)
    writer.write(0, {"layer00": np.zeros((3, 2))}, {"layer00": np.ones(3)})
    with pytest.raises(StoreError, match=r"\['layer01'\] were never written"):
        writer.finalize(ATTRS["taps"])


def test_required_attributes(tmp_path):
    with pytest.raises(StoreError, match="missing"):
        ViewWriter(tmp_path / "v.zarr", [1], {"model": "m"})
