"""The official FLEURS folder layout: ``<fleurs_code>/<split>.tsv`` + ``audio/<split>/*.wav``.

The TSV is headerless with the columns id, file_name, raw_transcription, transcription,
phonemes, num_samples, gender; one to three rows (speakers) per sentence id. The same reader
serves real FLEURS and the synthesised demo corpus.
"""

from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from gapscope.corpus.audio import TARGET_RATE

TSV_COLUMNS = [
    "id",
    "file_name",
    "raw_transcription",
    "transcription",
    "phonemes",
    "num_samples",
    "gender",
]


def tsv_path(root: str | Path, fleurs_code: str, split: str) -> Path:
    """Path of one language's split table."""
    return Path(root) / fleurs_code / f"{split}.tsv"


def audio_dir(root: str | Path, fleurs_code: str, split: str) -> Path:
    """Folder holding one language's split audio."""
    return Path(root) / fleurs_code / "audio" / split


def read_tsv(path: str | Path) -> pd.DataFrame:
    """Read a headerless FLEURS split table; ids become int64."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: FLEURS split table not found")
    df = pd.read_csv(
        path,
        sep="\t",
        header=None,
        names=TSV_COLUMNS,
        quoting=csv.QUOTE_NONE,
        dtype=str,
        keep_default_na=False,
    )
    bad = ~df["id"].str.fullmatch(r"\d+")
    if bad.any():
        line = int(np.flatnonzero(bad.to_numpy())[0]) + 1
        raise ValueError(
            f"{path}: line {line}: sentence id {df['id'][bad].iloc[0]!r} is not an integer"
        )
    df["id"] = df["id"].astype("int64")
    return df


def normalise_transcription(text: str) -> str:
    """FLEURS-style normalised transcription: lower case, punctuation removed."""
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(kept.lower().split())


def write_split(
    root: str | Path,
    fleurs_code: str,
    split: str,
    rows: list[tuple[int, str, np.ndarray]],
    *,
    gender: str = "MALE",
) -> Path:
    """Write (id, raw text, 16 kHz samples) rows in the official layout; return the TSV path."""
    folder = audio_dir(root, fleurs_code, split)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for sentence_id, text, samples in rows:
        name = f"{sentence_id}.wav"
        sf.write(folder / name, samples, TARGET_RATE, subtype="PCM_16")
        cells = [
            str(sentence_id),
            name,
            text,
            normalise_transcription(text),
            "",
            str(len(samples)),
            gender,
        ]
        if any("\t" in c or "\n" in c for c in cells):
            raise ValueError(f"sentence id {sentence_id}: text contains a tab or newline")
        lines.append("\t".join(cells))
    path = tsv_path(root, fleurs_code, split)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
