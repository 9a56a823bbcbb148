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
    for index, start in enumerate(range(0, n, chunk)):
        block = {t: v[start : start + chunk] for t, v in data.items()}
        writer.write_chunk(index, block, {t: np.full(len(b), 5) for t, b in block.items()})
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
    writer.write_chunk(0, {"layer00": np.zeros((3, 2))}, {"layer00": np.ones(3)})
    with pytest.raises(StoreError, match=r"\['layer01'\] were never written"):
        writer.finalize(ATTRS["taps"])


def test_required_attributes(tmp_path):
    with pytest.raises(StoreError, match="missing"):
        ViewWriter(tmp_path / "v.zarr", [1], {"model": "m"})


def test_finalize_refuses_missing_chunks(tmp_path):
    writer = ViewWriter(tmp_path / "v.zarr", list(range(10)), ATTRS, chunk_size=4)
    block = {t: np.zeros((4, 2)) for t in ATTRS["taps"]}
    writer.write_chunk(0, block, {t: np.ones(4) for t in block})
    with pytest.raises(StoreError, match="1 of 3 chunks"):
        writer.finalize(ATTRS["taps"])
    with pytest.raises(StoreError, match="out of order"):
        writer.write_chunk(2, block, {t: np.ones(4) for t in block})


def test_resume_continues_after_finished_chunks(tmp_path):
    path = tmp_path / "v.zarr"
    full = write(tmp_path / "ref.zarr", n=10, chunk=4)
    writer = ViewWriter(path, list(range(100, 110)), ATTRS, chunk_size=4)
    block = {t: v[:4] for t, v in full.items()}
    writer.write_chunk(0, block, {t: np.full(4, 5) for t in block})
    resumed = ViewWriter(path, list(range(100, 110)), ATTRS, chunk_size=4, resume=True)
    assert resumed.chunks_done == 1
    for index in (1, 2):
        block = {t: v[4 * index : 4 * index + 4] for t, v in full.items()}
        resumed.write_chunk(index, block, {t: np.full(len(b), 5) for t, b in block.items()})
    resumed.finalize(ATTRS["taps"])
    for tap, values in full.items():
        np.testing.assert_array_equal(open_view(path).read(tap), values)


@pytest.mark.parametrize(
    "change",
    [{"checkpoint": "other"}, {"init": "random"}, {"language": "deu_Latn"}],
)
def test_resume_refuses_a_store_from_other_settings(tmp_path, change):
    path = tmp_path / "v.zarr"
    writer = ViewWriter(path, [1, 2, 3, 4], ATTRS, chunk_size=2)
    writer.write_chunk(0, {"layer00": np.ones((2, 2))}, {"layer00": np.ones(2)})
    again = ViewWriter(path, [1, 2, 3, 4], {**ATTRS, **change}, chunk_size=2, resume=True)
    assert again.chunks_done == 0
    other_ids = ViewWriter(tmp_path / "w.zarr", [1, 2, 3, 4], ATTRS, chunk_size=2)
    other_ids.write_chunk(0, {"layer00": np.ones((2, 2))}, {"layer00": np.ones(2)})
    assert (
        ViewWriter(tmp_path / "w.zarr", [1, 2, 3, 5], ATTRS, chunk_size=2, resume=True).chunks_done
        == 0
    )


def test_publish_moves_only_complete_stores(tmp_path):
    from gapscope.store import publish, staging_path

    final = tmp_path / "out" / "text.zarr"
    staging = staging_path(final)
    assert staging.name == ".text.zarr.partial" and staging.parent == final.parent
    staging.parent.mkdir(parents=True)
    write(staging, finish=False)
    with pytest.raises(StoreError, match="incomplete"):
        publish(staging, final)
    assert not final.exists()
    write(staging)
    publish(staging, final)
    assert open_view(final).attrs["complete"] is True and not staging.exists()
