"""The activation store: one Zarr v3 group per view (model, language, modality).

Layout of ``results/activations/{model}/{language}/{modality}.zarr``::

    sentence_ids          int64 (n,)
    taps/<tap>            float32 (n, dim), chunked along sentences
    lengths/<tap>         int32 (n,): how many positions were pooled per sentence

Group attributes: the run identity (:class:`gapscope.identity.RunIdentity`: model, adapter,
checkpoint, revision, init, dtype, seed, options, pooling, recording), language, modality,
taps (ordered), device, gapscope_version, store_format, n_sentences, chunk_size,
``chunks_done`` (progress, for resuming) and ``complete: true``, written last, after every
chunk is flushed to disk. A store without it is never read. The extraction writes a store
at a staging path beside its final path (:func:`staging_path`, outside Snakemake's outputs,
so an interrupted job's finished chunks survive for the rerun) and renames it into place
when complete (:func:`publish`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from gapscope import __version__
from gapscope.errors import StoreError
from gapscope.identity import REQUIRED_FIELDS, VIEW_FIELDS

STORE_FORMAT = 1
REQUIRED_ATTRS = (*REQUIRED_FIELDS, *VIEW_FIELDS)


class ViewWriter:
    """Write one view chunk by chunk; resumable; marked complete only at the end.

    Rows are written one store chunk at a time; after each chunk the attribute
    ``chunks_done`` records the progress. Opening a writer on an unfinished store written with
    the same attributes and sentence ids resumes after its last finished chunk (a chunk
    interrupted mid-write is simply written again); any other existing store is replaced.
    """

    def __init__(
        self,
        path: str | Path,
        sentence_ids: Sequence[int],
        attrs: Mapping[str, object],
        *,
        chunk_size: int = 256,
        resume: bool = False,
    ) -> None:
        missing = [k for k in REQUIRED_ATTRS if k not in attrs]
        if missing:
            raise StoreError(f"{path}: store attributes missing {missing}")
        self.path = Path(path)
        self.n = len(sentence_ids)
        self.chunk_size = int(chunk_size)
        ids = np.asarray(sentence_ids, dtype=np.int64)
        identity = {
            **dict(attrs),
            "gapscope_version": __version__,
            "store_format": STORE_FORMAT,
            "n_sentences": self.n,
            "chunk_size": self.chunk_size,
        }
        self.chunks_done = self._resumable(identity, ids) if resume else 0
        if self.chunks_done:
            self.group = zarr.open_group(str(self.path), mode="r+")
        else:
            self.group = zarr.open_group(str(self.path), mode="w", zarr_format=3)
            self.group.attrs.update({**identity, "complete": False, "chunks_done": 0})
            self.group.create_array("sentence_ids", data=ids, chunks=(max(self.n, 1),))
        self.taps = self.group.require_group("taps")
        self.lengths = self.group.require_group("lengths")

    def _resumable(self, identity: Mapping[str, object], ids: np.ndarray) -> int:
        """Finished chunks of an existing unfinished store that matches exactly, else 0."""
        try:
            group = zarr.open_group(str(self.path), mode="r")
            attrs = dict(group.attrs)
            same = all(attrs.get(k) == _jsonable(v) for k, v in identity.items())
            if same and not attrs.get("complete") and np.array_equal(group["sentence_ids"][:], ids):
                return int(attrs.get("chunks_done", 0))
        except Exception:  # absent, foreign or broken: start afresh
            return 0
        return 0

    @property
    def n_chunks(self) -> int:
        """Number of store chunks along sentences."""
        return -(-self.n // self.chunk_size)

    def _arrays(self, tap: str, dim: int) -> tuple[zarr.Array, zarr.Array]:
        if tap not in self.taps:
            self.taps.create_array(
                tap, shape=(self.n, dim), chunks=(self.chunk_size, dim), dtype="float32"
            )
            self.lengths.create_array(
                tap, shape=(self.n,), chunks=(self.chunk_size,), dtype="int32"
            )
        return self.taps[tap], self.lengths[tap]

    def write_chunk(
        self, index: int, vectors: Mapping[str, np.ndarray], lengths: Mapping[str, np.ndarray]
    ) -> None:
        """Write store chunk ``index`` of every tap, then record it as done.

        Chunks are written in order; rewriting a finished chunk is refused.
        """
        if index != self.chunks_done:
            raise StoreError(f"{self.path}: chunk {index} written out of order")
        start = index * self.chunk_size
        for tap, block in vectors.items():
            values, counts = self._arrays(tap, block.shape[1])
            stop = start + block.shape[0]
            values[start:stop] = block.astype(np.float32, copy=False)
            counts[start:stop] = np.asarray(lengths[tap], dtype=np.int32)
        self.chunks_done = index + 1
        self.group.attrs["chunks_done"] = self.chunks_done

    def finalize(self, taps: Sequence[str]) -> None:
        """Check every chunk and tap, flush to disk, then set ``complete: true``."""
        if self.chunks_done != self.n_chunks:
            raise StoreError(f"{self.path}: {self.chunks_done} of {self.n_chunks} chunks written")
        absent = [t for t in taps if t not in self.taps]
        if absent:
            raise StoreError(f"{self.path}: taps {absent} were never written")
        self.group.attrs["taps"] = list(taps)
        _fsync_tree(self.path)
        self.group.attrs["complete"] = True
        _fsync_tree(self.path)


def _jsonable(value: object) -> object:
    """The value as it reads back from Zarr attributes (tuples become lists)."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder below ``root`` to stable storage."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish(staging: str | Path, final: str | Path) -> None:
    """Move a complete store from its staging path to its final path (atomic rename)."""
    staging, final = Path(staging), Path(final)
    open_view(staging)  # refuses anything incomplete
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, final)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def staging_path(final: str | Path) -> Path:
    """Where an unfinished store lives until it is complete (outside Snakemake's outputs)."""
    final = Path(final)
    return final.parent / f".{final.name}.partial"


@dataclass
class View:
    """A finished store opened for reading."""

    path: Path
    group: zarr.Group

    @property
    def attrs(self) -> dict:
        """The store's attributes."""
        return dict(self.group.attrs)

    @property
    def taps(self) -> list[str]:
        """Ordered tap names."""
        return list(self.group.attrs["taps"])

    @property
    def sentence_ids(self) -> np.ndarray:
        """Sentence ids, one per row."""
        return self.group["sentence_ids"][:]

    def read(self, tap: str) -> np.ndarray:
        """The (n_sentences, dim) float32 matrix of one tap."""
        if tap not in self.taps:
            raise StoreError(f"{self.path}: no tap {tap!r}; it has {self.taps}")
        return self.group["taps"][tap][:]

    def lengths(self, tap: str) -> np.ndarray:
        """Pooled sequence length per sentence for one tap."""
        return self.group["lengths"][tap][:]


def open_view(path: str | Path) -> View:
    """Open a finished view; refuse missing, foreign or incomplete stores with a clear error."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: store not found")
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as err:  # zarr raises several types for foreign or broken folders
        raise StoreError(f"{path}: not a readable Zarr group ({err})") from err
    attrs = dict(group.attrs)
    if attrs.get("store_format") != STORE_FORMAT or "taps" not in attrs:
        raise StoreError(f"{path}: not a gapscope activation store (format {STORE_FORMAT})")
    if attrs.get("complete") is not True:
        raise StoreError(f"{path}: store is incomplete (interrupted extraction?); rerun it")
    _check_chunks(path, group, attrs["taps"])
    return View(path, group)


def _check_chunks(path: Path, group: zarr.Group, taps: Sequence[str]) -> None:
    """Refuse a store whose chunk files are missing (Zarr would read them as zeros)."""
    arrays = [("sentence_ids", group["sentence_ids"])]
    for kind in ("taps", "lengths"):
        for tap in taps:
            if tap not in group[kind]:
                raise StoreError(f"{path}: truncated store, {kind}/{tap} is missing")
            arrays.append((f"{kind}/{tap}", group[kind][tap]))
    for name, array in arrays:
        if array.nchunks_initialized < array.nchunks:
            raise StoreError(
                f"{path}: truncated store, {name} has {array.nchunks_initialized} of "
                f"{array.nchunks} chunks on disk"
            )
