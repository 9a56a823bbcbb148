"""A parquet-based parallel speech dataset read with ``datasets`` (``corpus.source: hf_dataset``).

``corpus.hf_dataset`` says where the dataset is (hub repo id or local folder in the hub's
layout), which split, how a language is found (a per-language configuration name template,
a language column, or both) and which columns hold the sentence id, the text and the audio.
Audio is never decoded by ``datasets`` (that needs torchcodec): the column is read as encoded
bytes and decoded here with soundfile, resampled to 16 kHz mono and written as WAV files in
the official FLEURS layout, so the manifest stage treats it exactly like FLEURS. Several rows
with the same id are several recordings, in dataset order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from gapscope import languages
from gapscope.corpus import fleurs
from gapscope.corpus.audio import TARGET_RATE, AudioError, decode_bytes, resample
from gapscope.errors import ConfigError

log = logging.getLogger(__name__)

LANGUAGE_CODES = ("flores", "fleurs", "seamless", "sonar_text", "sonar_speech", "name")
KEY = "corpus.hf_dataset"


@dataclass(frozen=True)
class DatasetSpec:
    """Where a parquet speech dataset is and how to read it: the ``corpus.hf_dataset``
    settings of the same names (the schema documents each)."""

    path: str | None
    revision: str | None
    config_name: str | None
    split: str | None
    language_column: str | None
    language_code: str
    language_map: Mapping[str, str]
    id_column: str
    text_column: str
    audio_column: str


SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(DatasetSpec))


def dataset_code(language: str, spec: DatasetSpec) -> str:
    """The value that names ``language`` inside the dataset (config name or column value)."""
    mapping = spec.language_map or {}
    if language in mapping:
        return str(mapping[language])
    column = spec.language_code
    value = getattr(languages.get(language), column)
    if value is None:
        raise ConfigError(
            f"{KEY}.language_code: {language} has no {column} code in gapscope's language "
            f"table; add it to {KEY}.language_map"
        )
    return str(value)


def check_spec(spec: DatasetSpec, codes: list[str]) -> None:
    """Config checks that need no data; raise ConfigError naming the key."""
    if not spec.path:
        raise ConfigError(f"{KEY}.path: required when corpus.source is hf_dataset")
    template = spec.config_name
    if template is not None and "{code}" not in template and not spec.language_column:
        raise ConfigError(
            f"{KEY}.config_name: {template!r} names one configuration for every language; "
            "use a template with {code} or set " + f"{KEY}.language_column"
        )
    if not template and not spec.language_column:
        raise ConfigError(
            f"{KEY}: set config_name (a template with {{code}}, one configuration per language) "
            "and/or language_column (a column holding the language) so languages can be found"
        )
    if spec.language_code not in LANGUAGE_CODES:
        raise ConfigError(f"{KEY}.language_code: must be one of {', '.join(LANGUAGE_CODES)}")
    unknown = sorted(set(spec.language_map or {}) - set(codes))
    if unknown:
        log.info("%s.language_map: entries for unconfigured languages %s", KEY, unknown)
    for code in codes:
        dataset_code(code, spec)


def load_language(spec: DatasetSpec, language: str, split: str, cache_dir: str | None = None):
    """The rows of one language as a ``datasets.Dataset`` with undecoded audio."""
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "corpus.source hf_dataset needs the `datasets` package (pip install 'gapscope[hf]')"
        ) from err
    code = dataset_code(language, spec)
    template = spec.config_name
    name = template.format(code=code) if template else None
    wanted = spec.split or split
    tries = [wanted] + (["validation"] if not spec.split and split == "dev" else [])
    last: Exception | None = None
    for split_name in tries:
        try:
            ds = datasets.load_dataset(
                spec.path,
                name,
                split=split_name,
                revision=spec.revision,
                cache_dir=cache_dir,
            )
            break
        except ValueError as err:
            if "split" not in str(err).lower():
                raise ConfigError(f"{KEY}: {spec.path} ({name}): {err}") from err
            last = err
    else:
        raise ConfigError(f"{KEY}.split: {spec.path} ({name}): {last}") from last
    column = spec.language_column
    for key in ("id_column", "text_column", "audio_column", "language_column"):
        col = getattr(spec, key)
        if col is not None and col not in ds.column_names:
            raise ConfigError(
                f"{KEY}.{key}: no column {col!r} in {spec.path} ({name}); "
                f"columns: {', '.join(ds.column_names)}"
            )
    if column:
        values = [str(v) for v in ds.select_columns([column])[column]]
        index = [i for i, v in enumerate(values) if v == code]
        if not index:
            seen = sorted(set(values))
            raise ConfigError(
                f"{KEY}.language_column: no row of {language} ({column} == {code!r}) in "
                f"{spec.path}; values: {', '.join(seen[:20])}"
            )
        ds = ds.select(index)
    audio = spec.audio_column
    if isinstance(ds.features[audio], datasets.Audio):
        ds = ds.cast_column(audio, datasets.Audio(decode=False))
    return ds.select_columns([spec.id_column, spec.text_column, audio])


def _parse_id(value, row: int) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]+", text):
        raise ConfigError(
            f"{KEY}.id_column: row {row} has id {value!r}; sentence ids must be non-negative "
            "integers shared across languages"
        )
    return int(text)


def _audio(value, base: Path | None) -> tuple[np.ndarray | None, bytes, str]:
    """Decode one audio cell: (16 kHz samples or None when undecodable, raw bytes, suffix)."""
    if isinstance(value, Mapping) and value.get("array") is not None:
        data = np.asarray(value["array"], dtype=np.float32)
        if data.ndim == 2:
            data = data.mean(axis=0 if data.shape[0] < data.shape[1] else 1)
        return resample(data, int(value["sampling_rate"])), b"", ".wav"
    path = value.get("path") if isinstance(value, Mapping) else value
    raw = value.get("bytes") if isinstance(value, Mapping) else None
    suffix = Path(str(path)).suffix.lower() if path else ""
    if raw is None and path:
        candidate = Path(path) if Path(path).is_absolute() or base is None else base / path
        raw = candidate.read_bytes() if candidate.exists() else None
    if raw is None:
        return None, b"", suffix or ".wav"
    try:
        samples, _ = decode_bytes(bytes(raw), str(path or "audio bytes"))
    except AudioError:
        return None, bytes(raw), suffix or ".bin"
    return samples, bytes(raw), ".wav"


def export_language(
    spec: DatasetSpec,
    language: str,
    split: str,
    table_out: str | Path,
    audio_out: str | Path,
    *,
    cache_dir: str | None = None,
) -> dict:
    """Write one language of the dataset in the official FLEURS layout; return counts.

    Every row becomes a table line and a file: decodable audio as 16 kHz float WAV,
    undecodable audio as its original bytes (the manifest stage reports it as unreadable,
    or as not found when the cell was empty), so bad inputs are judged in one place.
    """
    ds = load_language(spec, language, split, cache_dir)
    local = Path(spec.path)
    base = local if local.is_dir() else None
    folder = Path(audio_out)
    folder.mkdir(parents=True, exist_ok=True)
    lines, seen = [], {}
    undecodable = 0
    id_col, text_col, audio_col = (
        spec.id_column,
        spec.text_column,
        spec.audio_column,
    )
    for row_number, row in enumerate(ds):
        sid = _parse_id(row[id_col], row_number)
        k = seen.get(sid, 0)
        seen[sid] = k + 1
        text = re.sub(r"[\t\r\n]+", " ", str(row[text_col] or "")).strip()
        samples, raw, suffix = _audio(row[audio_col], base)
        name = f"{sid}_{k}{suffix}"
        if samples is not None:
            sf.write(folder / name, samples, TARGET_RATE, subtype="FLOAT")
        else:
            undecodable += 1
            if raw:
                (folder / name).write_bytes(raw)
        count = -1 if samples is None else len(samples)
        lines.append(fleurs.table_line(sid, name, text, count, ""))
    if not lines:
        raise ConfigError(f"{KEY}: no row for {language} in {spec.path}")
    Path(table_out).parent.mkdir(parents=True, exist_ok=True)
    Path(table_out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = {
        "dataset": str(spec.path),
        "language": language,
        "rows": len(lines),
        "sentence_ids": len(seen),
        "undecodable": undecodable,
    }
    log.info("exported %s", info)
    return info
