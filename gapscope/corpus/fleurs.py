"""The official FLEURS folder layout: ``<fleurs_code>/<split>.tsv`` + ``audio/<split>/*.wav``.

The TSV is headerless with the columns id, file_name, raw_transcription, transcription,
phonemes, num_samples, gender; one to three rows (speakers) per sentence id. The same reader
serves real FLEURS and the synthesised demo corpus.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

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
    """Read a headerless FLEURS split table; ids become int64.

    Tolerates a UTF-8 byte-order mark, CRLF line ends and blank lines; a row without exactly
    the seven official fields, a non-integer id or an empty file name is an error that names
    the line. Exact duplicate rows are dropped (one recording listed twice).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: FLEURS split table not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err})") from err
    rows, lines = [], []
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(TSV_COLUMNS):
            raise ValueError(
                f"{path}: line {lineno}: {len(cells)} tab-separated fields, expected "
                f"{len(TSV_COLUMNS)} ({', '.join(TSV_COLUMNS)})"
            )
        if not re.fullmatch(r"\s*[0-9]+\s*", cells[0]):
            raise ValueError(f"{path}: line {lineno}: sentence id {cells[0]!r} is not an integer")
        if not cells[1].strip():
            raise ValueError(f"{path}: line {lineno}: empty file_name")
        rows.append(cells)
        lines.append(lineno)
    if not rows:
        raise ValueError(f"{path}: empty FLEURS split table")
    df = pd.DataFrame(rows, columns=TSV_COLUMNS, dtype=object)
    df["id"] = df["id"].str.strip().astype("int64")
    df["file_name"] = df["file_name"].str.strip()
    df = df.drop_duplicates(ignore_index=True)
    return df


class AudioFolder:
    """Finds a table's audio files in a split folder, tolerating one level of nesting.

    The official tarballs unpack to ``<split>/<file>``; a folder extracted one level too
    deep (``audio/test/test/x.wav``) or with sub-folders still resolves, by file name,
    as long as the name is unique under the folder.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._index: dict[str, list[Path]] | None = None

    def _build(self) -> dict[str, list[Path]]:
        index: dict[str, list[Path]] = {}
        if self.folder.is_dir():
            for path in sorted(self.folder.rglob("*")):
                if path.is_file():
                    index.setdefault(path.name, []).append(path)
        return index

    def resolve(self, file_name: str) -> Path:
        """The file's path; a not-found path (checked later) when it is nowhere."""
        direct = self.folder / file_name
        if direct.exists():
            return direct
        if self._index is None:
            self._index = self._build()
        found = self._index.get(Path(file_name).name, [])
        if len(found) > 1:
            raise ValueError(
                f"{self.folder}: audio file name {file_name!r} is ambiguous "
                f"({', '.join(map(str, found[:3]))})"
            )
        return found[0] if found else direct


def normalise_transcription(text: str) -> str:
    """FLEURS-style normalised transcription: lower case, punctuation removed."""
    kept = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    return " ".join(kept.lower().split())


def table_line(
    sentence_id: int, file_name: str, text: str, num_samples: int, gender: str = "MALE"
) -> str:
    """One row of an official split table (the transcription is normalised from ``text``)."""
    cells = [
        str(sentence_id),
        file_name,
        text,
        normalise_transcription(text),
        "",
        str(num_samples),
        gender,
    ]
    if any("\t" in c or "\n" in c or "\r" in c for c in cells):
        raise ValueError(f"sentence id {sentence_id}: text contains a tab or newline")
    return "\t".join(cells)


def write_split(
    root: str | Path,
    fleurs_code: str,
    split: str,
    rows: list[tuple],
    *,
    gender: str = "MALE",
) -> Path:
    """Write rows in the official layout; return the TSV path.

    A row is (id, raw text, 16 kHz samples) or (id, raw text, 16 kHz samples, file name);
    several rows may share an id (several speakers). Without a file name the file is
    ``<id>.wav``, or ``<id>_<k>.wav`` for the k-th recording of an id after the first.
    """
    folder = audio_dir(root, fleurs_code, split)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    seen: dict[int, int] = {}
    for row in rows:
        sentence_id, text, samples = row[:3]
        k = seen.get(sentence_id, 0)
        seen[sentence_id] = k + 1
        name = (
            row[3] if len(row) > 3 else f"{sentence_id}.wav" if k == 0 else f"{sentence_id}_{k}.wav"
        )
        sf.write(folder / name, samples, TARGET_RATE, subtype="PCM_16")
        lines.append(table_line(sentence_id, name, text, len(samples), gender))
    path = tsv_path(root, fleurs_code, split)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
