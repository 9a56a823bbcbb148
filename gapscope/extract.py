"""Extraction loop: every sentence of one view through a loaded adapter into a store writer.

Sentences are processed in store chunks (bounded memory whatever the corpus size); inside a
chunk they are sorted by length and packed into batches under a padded-size budget, so
padding stays small. Several recordings of one id (``corpus.recording: all``) are averaged
in representation space.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm import tqdm

from gapscope.corpus.audio import TARGET_RATE, check_audio, read_audio
from gapscope.models.base import check_finite

if TYPE_CHECKING:
    from gapscope.store import ViewWriter

log = logging.getLogger(__name__)


@dataclass
class BatchPlan:
    """Row indices per batch and the padding they cost."""

    batches: list[list[int]]
    real: int
    padded: int

    @property
    def padding_waste(self) -> float:
        """Fraction of computed positions that are padding."""
        return 0.0 if self.padded == 0 else 1.0 - self.real / self.padded


def plan_batches(
    lengths: Sequence[int], budget: int, *, max_batch: int = 64, max_ratio: float = 1.3
) -> BatchPlan:
    """Sort by length and pack greedily into batches of similar length.

    A batch closes when adding the next (longer) sentence would exceed ``budget`` padded
    positions, hold more than ``max_batch`` sentences, or make its longest sentence more
    than ``max_ratio`` times its shortest (which bounds the padding of every batch).
    A sentence longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    real = padded = 0
    for i in order:
        longest = lengths[i]  # ascending order: the newcomer is the longest
        if current and (
            (len(current) + 1) * longest > budget
            or len(current) >= max_batch
            or longest > max_ratio * max(lengths[current[0]], 1)
        ):
            padded += len(current) * lengths[current[-1]]
            batches.append(current)
            current = []
        current.append(i)
        real += lengths[i]
    if current:
        padded += len(current) * lengths[current[-1]]
        batches.append(current)
    return BatchPlan(batches, real, padded)


def _load_inputs(rows: pd.DataFrame, modality: str) -> list:
    if modality == "text":
        return rows["text"].tolist()
    waves = []
    for path in rows["audio"]:
        samples, _ = read_audio(path, TARGET_RATE)
        check_audio(samples, path)
        waves.append(samples)
    return waves


def _lengths(adapter, inputs: list, language: str, modality: str) -> list[int]:
    if modality == "text":
        return adapter.text_lengths(inputs, language)
    return [len(w) for w in inputs]


def extract_view(
    adapter,
    manifest: pd.DataFrame,
    writer: ViewWriter,
    *,
    language: str,
    modality: str,
    budget: int,
    max_batch: int = 64,
    progress: bool = True,
) -> dict:
    """Fill ``writer`` with every sentence of ``manifest``; return run statistics.

    ``budget`` is the padded batch size: tokens for text, samples (16 kHz) for speech;
    ``max_batch`` caps the sentences per batch (1: one sentence at a time).
    """
    ids = np.asarray(sorted(manifest["sentence_id"].unique()), dtype=np.int64)
    real = padded = computed = 0
    bar = tqdm(total=len(manifest), unit="sent", file=sys.stderr, disable=not progress)
    context = f"{writer.path}"
    skipped = min(writer.chunks_done * writer.chunk_size, len(ids))
    if skipped:
        log.info("resuming %s after %d finished chunk(s)", writer.path, writer.chunks_done)
        bar.update(int(manifest["sentence_id"].isin(ids[:skipped]).sum()))
    for index in range(writer.chunks_done, writer.n_chunks):
        start = index * writer.chunk_size
        chunk_ids = ids[start : start + writer.chunk_size]
        rows = manifest[manifest["sentence_id"].isin(chunk_ids)].reset_index(drop=True)
        inputs = _load_inputs(rows, modality)
        computed += len(rows)
        plan = plan_batches(
            _lengths(adapter, inputs, language, modality), budget, max_batch=max_batch
        )
        real, padded = real + plan.real, padded + plan.padded
        vectors: dict[str, np.ndarray] = {}
        lengths: dict[str, np.ndarray] = {}
        for batch in plan.batches:
            pooled = adapter.encode([inputs[i] for i in batch], language, modality)
            check_finite(pooled, rows["sentence_id"].to_numpy()[batch], context)
            for tap, vec in pooled.vectors.items():
                if tap not in vectors:
                    vectors[tap] = np.empty((len(rows), vec.shape[1]), np.float32)
                    lengths[tap] = np.empty(len(rows), np.int32)
                vectors[tap][batch] = vec
                lengths[tap][batch] = pooled.lengths[tap]
            bar.update(len(batch))
        out_v, out_l = _average_recordings(
            rows["sentence_id"].to_numpy(), chunk_ids, vectors, lengths
        )
        writer.write_chunk(index, out_v, out_l)
    bar.close()
    writer.finalize(adapter.taps(modality))
    waste = 0.0 if padded == 0 else 1.0 - real / padded
    return {
        "n_sentences": int(len(ids)),
        "n_inputs": int(len(manifest)),
        "computed_inputs": int(computed),
        "resumed_sentences": int(skipped),
        "padding_waste": waste,
    }


def _average_recordings(
    row_ids: np.ndarray,
    chunk_ids: np.ndarray,
    vectors: dict[str, np.ndarray],
    lengths: dict[str, np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Collapse rows to one per sentence id (mean over recordings), in ``chunk_ids`` order."""
    if len(row_ids) == len(chunk_ids) and np.array_equal(row_ids, chunk_ids):
        return vectors, lengths
    index = np.searchsorted(chunk_ids, row_ids)
    counts = np.bincount(index, minlength=len(chunk_ids)).astype(np.float64)
    out_v, out_l = {}, {}
    for tap, vec in vectors.items():
        total = np.zeros((len(chunk_ids), vec.shape[1]), np.float64)
        np.add.at(total, index, vec)
        out_v[tap] = (total / counts[:, None]).astype(np.float32)
        summed = np.bincount(index, weights=lengths[tap], minlength=len(chunk_ids))
        out_l[tap] = np.rint(summed / counts).astype(np.int32)
    return out_v, out_l
