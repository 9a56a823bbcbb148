"""The activation store: one Zarr v3 group per view (model, language, modality).

Layout of ``results/activations/{model}/{language}/{modality}.zarr``::

    sentence_ids          int64 (n,)
    taps/<tap>            float32 (n, dim), chunked along sentences
    lengths/<tap>         int32 (n,): how many positions were pooled per sentence

Group attributes: model, adapter, checkpoint, revision, init, dtype, language, modality,
pooling, taps (ordered), gapscope_version, store_format, n_sentences, chunk_size, and
``complete: true`` written last, after every chunk. A store without it is never read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from gapscope import __version__

STORE_FORMAT = 1
REQUIRED_ATTRS = (
    "model",
    "adapter",
    "checkpoint",
    "revision",
    "init",
    "dtype",
    "language",
    "modality",
    "pooling",
    "taps",
)


class StoreError(ValueError):
    """A store is missing, incomplete, foreign or inconsistent; the message names it."""


class ViewWriter:
    """Write one view chunk by chunk; mark it complete only at the end."""

    def __init__(
        self,
        path: str | Path,
        sentence_ids: Sequence[int],
        attrs: Mapping[str, object],
        *,
        chunk_size: int = 256,
    ) -> None:
        missing = [k for k in REQUIRED_ATTRS if k not in attrs]
        if missing:
            raise StoreError(f"{path}: store attributes missing {missing}")
        self.path = Path(path)
        self.n = len(sentence_ids)
        self.chunk_size = int(chunk_size)
        self.group = zarr.open_group(str(self.path), mode="w", zarr_format=3)
        self.group.attrs.update(
            {
                **dict(attrs),
                "gapscope_version": __version__,
                "store_format": STORE_FORMAT,
                "n_sentences": self.n,
                "chunk_size": self.chunk_size,
                "complete": False,
            }
        )
        ids = np.asarray(sentence_ids, dtype=np.int64)
        self.group.create_array("sentence_ids", data=ids, chunks=(max(self.n, 1),))
        self.taps = self.group.require_group("taps")
        self.lengths = self.group.require_group("lengths")

    def _arrays(self, tap: str, dim: int) -> tuple[zarr.Array, zarr.Array]:
        if tap not in self.taps:
            self.taps.create_array(
                tap, shape=(self.n, dim), chunks=(self.chunk_size, dim), dtype="float32"
            )
            self.lengths.create_array(
                tap, shape=(self.n,), chunks=(self.chunk_size,), dtype="int32"
            )
        return self.taps[tap], self.lengths[tap]

    def write(
        self, start: int, vectors: Mapping[str, np.ndarray], lengths: Mapping[str, np.ndarray]
    ) -> None:
        """Write rows ``start:start+len`` of every tap (whole chunks keep writes atomic)."""
        for tap, block in vectors.items():
            values, counts = self._arrays(tap, block.shape[1])
            stop = start + block.shape[0]
            values[start:stop] = block.astype(np.float32, copy=False)
            counts[start:stop] = np.asarray(lengths[tap], dtype=np.int32)

    def finalize(self, taps: Sequence[str]) -> None:
        """Check every declared tap was written, then set ``complete: true``."""
        absent = [t for t in taps if t not in self.taps]
        if absent:
            raise StoreError(f"{self.path}: taps {absent} were never written")
        self.group.attrs.update({"taps": list(taps), "complete": True})


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
    return View(path, group)
