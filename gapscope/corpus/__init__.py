"""Corpus readers: parallel sentences as text and speech, aligned by sentence id.

Every source (the synthesised demo, a local FLEURS folder, the FLEURS hub files, a parquet
speech dataset) ends in the same FLEURS-layout folder and then in the same normalised
manifest per language, so nothing downstream knows where data came from.

Selection rules (all deterministic, all reported in ``results/corpus/{language}/report.json``):

1. ``corpus.sentence_ids`` (a file of ids), when set, fixes the candidate ids for every
   language; requested ids the language lacks are listed as ``missing_ids``, never replaced.
2. ``corpus.max_sentences`` keeps the smallest candidate ids, before any quality check, so a
   dropped id is reported as dropped rather than silently replaced by the next one.
3. Text: the id's transcript (identical on every row in FLEURS; where rows disagree, the most
   frequent form wins and the id is listed under ``text_variants``). An empty transcript is a
   bad input.
4. Recording (``corpus.recording``): ``first`` = the first recording in table order (with
   ``on_bad_input: skip``, the next usable one when it is bad, listed under
   ``fallback_recordings``); ``all`` = every usable recording (averaged in representation
   space at extraction); an index ``k`` = the k-th recording (0-based, table order), ids
   without it are listed under ``ids_without_recording``.
5. Bad inputs (unreadable, empty, too short, silent, non-finite or clipped audio, audio
   longer than ``corpus.max_seconds``; empty transcripts): ``corpus.on_bad_input: error``
   stops with every problem listed; ``skip`` drops the recording (the id when none is left)
   and lists it under ``skipped``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from gapscope.corpus import fleurs
from gapscope.corpus.audio import AudioError, inspect_audio
from gapscope.errors import ConfigError

MANIFEST_COLUMNS = ["sentence_id", "recording", "text", "audio", "num_samples"]
MAX_LISTED = 20


class CorpusError(ValueError):
    """The corpus of a language cannot be built; the message lists every problem."""


def read_sentence_ids(path: str | Path) -> list[int]:
    """Sorted unique ids from a file: one id per line (first field of a TSV/CSV row).

    Blank lines and ``#`` comments are ignored, and so is a first line ``id`` or
    ``sentence_id`` (a header). Anything else that is not an integer names its line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"corpus.sentence_ids: {path} not found")
    ids: set[int] = set()
    header_allowed = True
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig").split("\n"), 1):
        field = line.split("#", 1)[0].strip().replace(",", "\t").split("\t")[0].strip()
        if not field:
            continue
        if header_allowed and field in ("id", "sentence_id"):
            header_allowed = False
            continue
        header_allowed = False
        if not re.fullmatch(r"[0-9]+", field):
            raise ConfigError(f"corpus.sentence_ids: {path}: line {lineno}: {field!r} is not an id")
        ids.add(int(field))
    if not ids:
        raise ConfigError(f"corpus.sentence_ids: {path} holds no sentence id")
    return sorted(ids)


def _text_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def build_manifest(
    table: pd.DataFrame,
    audio_folder: str | Path,
    *,
    language: str,
    text_field: str = "raw_transcription",
    recording: str | int = "first",
    max_sentences: int | None = None,
    source: str = "",
    sentence_ids: list[int] | None = None,
    on_bad_input: str = "error",
    check: Callable[[Path], int] | None = None,
    report: dict | None = None,
) -> pd.DataFrame:
    """Normalise a FLEURS split table into the manifest (one row per kept recording).

    See the module docstring for the selection rules. ``check(path)`` validates one audio
    file and returns its length in 16 kHz samples (raising :class:`AudioError`); without
    it audio is not looked at and the table's ``num_samples`` is kept. ``report``, when
    given, is filled with the counts and lists the selection produced.
    """
    if text_field not in table.columns:
        raise ConfigError(f"corpus.text_field: {text_field!r} is not a column of {source}")
    if on_bad_input not in ("error", "skip"):
        raise ConfigError(f"corpus.on_bad_input: {on_bad_input!r} is not error or skip")
    if recording not in ("first", "all"):
        recording = int(recording)
    df = table.reset_index(drop=True).copy()
    df["recording"] = df.groupby("id").cumcount()
    df[text_field] = df[text_field].fillna("").astype(str)
    groups = {int(k): g for k, g in df.groupby("id", sort=True)}
    in_table = sorted(groups)

    candidates, missing = in_table, []
    if sentence_ids is not None:
        wanted = set(sentence_ids)
        candidates = [i for i in in_table if i in wanted]
        missing = sorted(wanted - set(in_table))
    capped = []
    if max_sentences is not None:
        candidates, capped = candidates[:max_sentences], candidates[max_sentences:]

    folder = fleurs.AudioFolder(audio_folder)
    rows: list[dict] = []
    empty_text: list[int] = []
    problems: list[dict] = []
    variants: list[int] = []
    fallbacks: list[dict] = []
    without: list[int] = []
    dropped: list[int] = []
    skip = on_bad_input == "skip"

    def usable(row) -> tuple[bool, int, str]:
        path = folder.resolve(row["file_name"])
        if check is None:
            n = pd.to_numeric(row["num_samples"], errors="coerce")
            return True, -1 if pd.isna(n) else int(n), str(path)
        try:
            return True, int(check(path)), str(path)
        except AudioError as err:
            problems.append(
                {
                    "sentence_id": int(row["id"]),
                    "recording": int(row["recording"]),
                    "file": str(path),
                    "reason": str(err),
                }
            )
            return False, -1, str(path)

    for sid in candidates:
        group = groups[sid]
        texts = [t.strip() for t in group[text_field]]
        keyed = [(_text_key(t), t) for t in texts if t]
        if not keyed:
            empty_text.append(sid)
            dropped.append(sid)
            continue
        counts = Counter(k for k, _ in keyed)
        best = max(counts.values())
        text = next(t for k, t in keyed if counts[k] == best)
        if len(counts) > 1:
            variants.append(sid)
        records = group.to_dict("records")
        chosen: list[tuple[dict, int, str]] = []
        if recording == "first":
            for position, row in enumerate(records):
                ok, n, path = usable(row)
                if ok:
                    chosen.append((row, n, path))
                    if position:
                        fallbacks.append({"sentence_id": sid, "recording": int(row["recording"])})
                    break
                if not skip:
                    break
        elif recording == "all":
            for row in records:
                ok, n, path = usable(row)
                if ok:
                    chosen.append((row, n, path))
        else:
            match = [r for r in records if r["recording"] == recording]
            if not match:
                without.append(sid)
                continue
            ok, n, path = usable(match[0])
            if ok:
                chosen.append((match[0], n, path))
        if not chosen:
            dropped.append(sid)
            continue
        for row, n, path in chosen:
            rows.append(
                {
                    "sentence_id": sid,
                    "recording": int(row["recording"]),
                    "text": text,
                    "audio": path,
                    "num_samples": n,
                }
            )

    if (empty_text or problems) and not skip:
        raise CorpusError(_problem_message(source, text_field, empty_text, problems))

    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    manifest = manifest.astype(
        {"sentence_id": "int64", "recording": "int64", "num_samples": "int64"}
    )
    if report is not None:
        skipped = [
            {"sentence_id": sid, "recording": None, "file": None, "reason": f"empty {text_field}"}
            for sid in empty_text
        ] + problems
        per_id = manifest.groupby("sentence_id").size()
        report.update(
            {
                "language": language,
                "source": source,
                "text_field": text_field,
                "recording": str(recording),
                "on_bad_input": on_bad_input,
                "rows_in_table": int(len(table)),
                "ids_in_table": len(in_table),
                "max_recordings_per_id": int(df.groupby("id").size().max()) if len(df) else 0,
                "ids_requested": None if sentence_ids is None else len(set(sentence_ids)),
                "missing_ids": missing,
                "ids_not_requested": len(in_table) - len(candidates) - len(capped),
                "ids_beyond_max_sentences": len(capped),
                "sentence_ids": int(manifest["sentence_id"].nunique()),
                "recordings_used": int(len(manifest)),
                "recordings_per_id": {str(k): int(v) for k, v in Counter(per_id).items()},
                "dropped_ids": sorted(dropped),
                "ids_without_recording": without,
                "skipped": skipped,
                "fallback_recordings": fallbacks,
                "text_variants": variants,
            }
        )
    return manifest


def _problem_message(source: str, field: str, empty: list[int], problems: list[dict]) -> str:
    lines = [
        f"{source}: {len(empty) + len(problems)} bad input(s); fix them, or set "
        "corpus.on_bad_input: skip to drop them (they are then listed in the corpus report)"
    ]
    if empty:
        lines.append(f"empty or whitespace-only {field} for sentence id(s) {empty}")
    for p in problems[:MAX_LISTED]:
        lines.append(f"sentence id {p['sentence_id']} recording {p['recording']}: {p['reason']}")
    if len(problems) > MAX_LISTED:
        lines.append(f"... and {len(problems) - MAX_LISTED} more audio problem(s)")
    return "\n  ".join(lines)


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


def prepare_manifest(
    table_path: str | Path,
    audio_folder: str | Path,
    *,
    language: str,
    text_field: str,
    recording: str | int,
    max_sentences: int | None,
    on_bad_input: str,
    max_clipped_fraction: float,
    max_seconds: float | None,
    sentence_ids_path: str | Path | None,
) -> tuple[pd.DataFrame, dict]:
    """Read a FLEURS split table, check every used audio file, build the manifest and report.

    The selection arguments are the ``corpus`` settings of the same names (module docstring);
    ``sentence_ids_path`` is the file of ``corpus.sentence_ids`` or None. Every audio file the
    manifest names is read and checked here (the same reader and checks extraction uses), so
    extraction never meets a bad file halfway through a store.
    """
    table = fleurs.read_tsv(table_path)
    max_clipped = float(max_clipped_fraction)
    rates: Counter = Counter()
    channels: Counter = Counter()

    def check(path: Path) -> int:
        info = inspect_audio(path, max_clipped_fraction=max_clipped, max_seconds=max_seconds)
        rates[info.rate] += 1
        channels[info.channels] += 1
        return info.num_samples

    report: dict = {}
    manifest = build_manifest(
        table,
        audio_folder,
        language=language,
        text_field=text_field,
        recording=recording,
        max_sentences=max_sentences,
        source=str(table_path),
        sentence_ids=read_sentence_ids(sentence_ids_path) if sentence_ids_path else None,
        on_bad_input=on_bad_input,
        check=check,
        report=report,
    )
    if manifest["sentence_id"].nunique() < 3:
        raise CorpusError(
            f"{table_path}: {manifest['sentence_id'].nunique()} sentence(s) left for {language} "
            f"(at least 3 needed); see the selection counts: "
            + ", ".join(
                f"{k}={report[k] if isinstance(report[k], int) else len(report[k])}"
                for k in ("ids_in_table", "missing_ids", "dropped_ids", "ids_without_recording")
            )
        )
    report["sentence_ids_file"] = str(sentence_ids_path) if sentence_ids_path else None
    report["audio_rates"] = {str(k): v for k, v in sorted(rates.items())}
    report["audio_channels"] = {str(k): v for k, v in sorted(channels.items())}
    return manifest, report


__all__ = [
    "MANIFEST_COLUMNS",
    "CorpusError",
    "build_manifest",
    "fleurs",
    "prepare_manifest",
    "read_manifest",
    "read_sentence_ids",
    "write_manifest",
]
