"""Corpus stage: parallel sentences as text and speech, aligned by sentence id.

Every source (the synthesised demo, a local FLEURS folder, the FLEURS hub files) ends in the
same normalised manifest per language, so nothing downstream knows where data came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gapscope.corpus import fleurs

MANIFEST_COLUMNS = ["sentence_id", "recording", "text", "audio", "num_samples"]


def build_manifest(
    table: pd.DataFrame,
    audio_folder: str | Path,
    *,
    language: str,
    text_field: str = "raw_transcription",
    recording: str | int = "first",
    max_sentences: int | None = None,
    source: str = "",
) -> pd.DataFrame:
    """Normalise a FLEURS split table into the manifest (one row per kept recording).

    ``recording``: ``first`` keeps the first row of each id (table order); an integer keeps
    that recording index and drops ids without it; ``all`` keeps every recording (averaged in
    representation space at extraction). ``max_sentences`` keeps the smallest ids, so the
    same ids are kept in every language. Empty transcripts raise with the sentence id.
    """
    if text_field not in table.columns:
        raise ValueError(f"corpus.text_field: {text_field!r} is not a column of {source}")
    df = table.copy()
    df["recording"] = df.groupby("id").cumcount()
    empty = df[text_field].str.strip() == ""
    if empty.any():
        ids = sorted(set(df.loc[empty, "id"].tolist()))
        raise ValueError(
            f"{source}: empty or whitespace-only {text_field} for sentence id(s) {ids}"
        )
    texts = df.groupby("id")[text_field].nunique()
    if (texts > 1).any():
        bad = texts[texts > 1].index.tolist()
        raise ValueError(f"{source}: sentence id(s) {bad} have different texts on different rows")
    if recording == "first":
        df = df[df["recording"] == 0]
    elif recording != "all":
        df = df[df["recording"] == int(recording)]
    ids = sorted(df["id"].unique())
    if max_sentences is not None:
        ids = ids[:max_sentences]
    df = df[df["id"].isin(ids)].sort_values(["id", "recording"])
    folder = Path(audio_folder)
    return pd.DataFrame(
        {
            "sentence_id": df["id"].astype("int64").to_numpy(),
            "recording": df["recording"].astype("int64").to_numpy(),
            "text": df[text_field].to_numpy(),
            "audio": [str(folder / name) for name in df["file_name"]],
            "num_samples": pd.to_numeric(df["num_samples"], errors="coerce")
            .fillna(-1)
            .astype("int64")
            .to_numpy(),
        }
    )


def _as_int(column: pd.Series) -> np.ndarray:
    """Integer column with -1 where the cell is missing or not a number."""
    return pd.to_numeric(column, errors="coerce").fillna(-1).astype("int64").to_numpy()


def write_manifest(manifest: pd.DataFrame, path: str | Path) -> None:
    """Write a manifest as TSV."""
    manifest.to_csv(path, sep="\t", index=False)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read a manifest written by :func:`write_manifest`."""
    df = pd.read_csv(path, sep="\t", dtype={"text": str, "audio": str}, keep_default_na=False)
    missing = set(MANIFEST_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{path}: not a gapscope manifest (missing columns {sorted(missing)})")
    return df


__all__ = ["MANIFEST_COLUMNS", "build_manifest", "fleurs", "read_manifest", "write_manifest"]


def prepare_manifest(
    table_path: str | Path, audio_folder: str | Path, *, language: str, corpus: dict
) -> tuple[pd.DataFrame, dict]:
    """Read a FLEURS split table, build the manifest and a small corpus report.

    Audio files named by the table must exist; the error lists the missing ones.
    """
    table = fleurs.read_tsv(table_path)
    manifest = build_manifest(
        table,
        audio_folder,
        language=language,
        text_field=corpus["text_field"],
        recording=corpus["recording"],
        max_sentences=corpus.get("max_sentences"),
        source=str(table_path),
    )
    missing = [p for p in manifest["audio"] if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(
            f"{table_path}: {len(missing)} audio file(s) missing, e.g. {missing[:3]}"
        )
    if manifest.empty:
        raise ValueError(f"{table_path}: no sentence left for {language}")
    report = {
        "language": language,
        "source": str(table_path),
        "rows_in_table": int(len(table)),
        "sentence_ids": int(manifest["sentence_id"].nunique()),
        "recordings_used": int(len(manifest)),
        "max_recordings_per_id": int(table.groupby("id").size().max()),
    }
    return manifest, report
