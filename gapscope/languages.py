"""The shipped language table: one row per FLEURS language, keyed by FLORES-200 code.

Every part of gapscope names a language by its FLORES-200 code (``eng_Latn``, ``zho_Hans``).
This module maps such a code to the per-model codes (FLEURS config, SeamlessM4T, SONAR, espeak-ng)
and to the metadata used for grouping (script, family, resource class). The table itself lives in
``gapscope/data/languages.tsv``, whose comment header states the source of each column.
"""

from __future__ import annotations

import csv
import difflib
import functools
from dataclasses import dataclass
from importlib import resources
from typing import Literal, cast

__all__ = ["ENGLISH", "Language", "UnknownLanguageError", "by_fleurs", "get", "load_table"]

ENGLISH = "eng_Latn"  # the pivot of english_centric comparisons and of cross-lingual tables

Resource = Literal["high", "medium", "low"]

COLUMNS = (
    "flores",
    "fleurs",
    "name",
    "seamless",
    "sonar_text",
    "sonar_speech",
    "espeak",
    "script",
    "family",
    "resource",
    "joshi_class",
)
_RESOURCES = ("high", "medium", "low")


@dataclass(frozen=True)
class Language:
    """One row of the language table; ``None`` means the model or tool lacks the language."""

    flores: str
    fleurs: str
    name: str
    seamless: str | None
    sonar_text: str | None
    sonar_speech: str | None
    espeak: str | None
    script: str
    family: str
    resource: Resource
    joshi_class: int


class UnknownLanguageError(ValueError):
    """Raised for a code that is not in the table; the message suggests close matches."""


def _parse_row(row: dict[str, str], lineno: int) -> Language:
    """Build a :class:`Language` from one TSV row, checking the few constrained cells."""
    cell = {k: (row[k] or "").strip() for k in COLUMNS}
    resource = cell["resource"]
    if resource not in _RESOURCES:
        raise ValueError(f"languages.tsv line {lineno}: bad resource {resource!r}")
    return Language(
        flores=cell["flores"],
        fleurs=cell["fleurs"],
        name=cell["name"],
        seamless=cell["seamless"] or None,
        sonar_text=cell["sonar_text"] or None,
        sonar_speech=cell["sonar_speech"] or None,
        espeak=cell["espeak"] or None,
        script=cell["script"],
        family=cell["family"],
        resource=cast(Resource, resource),
        joshi_class=int(cell["joshi_class"]),
    )


@functools.cache
def load_table() -> dict[str, Language]:
    """Return the table as ``{flores_code: Language}``, in file order (sorted by code)."""
    text = resources.files("gapscope").joinpath("data/languages.tsv").read_text(encoding="utf-8")
    lines = [(i, ln) for i, ln in enumerate(text.splitlines(), 1) if ln and not ln.startswith("#")]
    reader = csv.DictReader((ln for _, ln in lines), delimiter="\t", quoting=csv.QUOTE_NONE)
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"languages.tsv header is {reader.fieldnames}, expected {list(COLUMNS)}")
    table: dict[str, Language] = {}
    for (lineno, _), row in zip(lines[1:], reader, strict=True):
        lang = _parse_row(row, lineno)
        if lang.flores in table:
            raise ValueError(f"languages.tsv line {lineno}: duplicate code {lang.flores}")
        table[lang.flores] = lang
    return table


@functools.cache
def _fleurs_index() -> dict[str, Language]:
    """Return the table keyed by FLEURS config name."""
    return {lang.fleurs: lang for lang in load_table().values()}


def _suggest(query: str) -> list[str]:
    """FLORES codes ``query`` may mean: exact matches on any name, else fuzzy code matches."""
    table = load_table()
    q = query.strip().lower()
    exact = [
        lang.flores
        for lang in table.values()
        if q in (lang.flores.lower(), lang.fleurs, lang.flores[:3], lang.name.lower())
        or (lang.seamless is not None and q == lang.seamless)
    ]
    if exact:
        return list(dict.fromkeys(exact))
    lowered = {code.lower(): code for code in table}
    return [lowered[c] for c in difflib.get_close_matches(q, list(lowered), n=3, cutoff=0.6)]


def _unknown(code: str, what: str) -> UnknownLanguageError:
    """Build the error for an unknown ``code`` of kind ``what``, with suggestions."""
    matches = _suggest(code)
    hint = (
        f"did you mean {', '.join(matches)}?"
        if matches
        else "see gapscope/data/languages.tsv for the supported codes"
    )
    return UnknownLanguageError(
        f"unknown language {code!r}: not {what} in gapscope's table; {hint}"
    )


def get(code: str) -> Language:
    """Return the language with FLORES-200 code ``code`` (exact, case-sensitive)."""
    try:
        return load_table()[code]
    except KeyError:
        raise _unknown(code, "a FLORES-200 code") from None


def by_fleurs(config: str) -> Language:
    """Return the language whose FLEURS config name is ``config`` (e.g. ``cmn_hans_cn``)."""
    try:
        return _fleurs_index()[config]
    except KeyError:
        raise _unknown(config, "a FLEURS config") from None
