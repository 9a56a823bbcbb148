"""Cross-language coverage: which sentence ids every language's manifest holds.

Stores keep every id their language has (after ``corpus.sentence_ids`` / ``max_sentences``
and the quality checks) and each pair is compared on the intersection of its two views, so
N can differ between pairs. This table makes every gap visible: one row per id (the union
over languages, plus requested ids nobody has), one column per language with the number of
recordings used (0 = missing there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def coverage_table(
    manifests: Mapping[str, pd.DataFrame], requested: Sequence[int] | None = None
) -> pd.DataFrame:
    """Id x language table of recordings used; ``n_languages`` counts the languages with it."""
    counts = {
        lang: m.groupby("sentence_id").size().astype("int64") for lang, m in manifests.items()
    }
    ids: set[int] = set(requested or ())
    for series in counts.values():
        ids.update(int(i) for i in series.index)
    index = pd.Index(sorted(ids), name="sentence_id", dtype="int64")
    table = pd.DataFrame(
        {lang: s.reindex(index, fill_value=0).astype("int64") for lang, s in counts.items()},
        index=index,
    )
    table.insert(0, "n_languages", (table > 0).sum(axis=1).astype("int64"))
    if requested is not None:
        wanted = set(requested)
        table.insert(1, "requested", [int(i in wanted) for i in index])
    return table.reset_index()


def coverage_summary(table: pd.DataFrame, languages: Sequence[str]) -> dict:
    """Per-language counts of the table and the ids common to all languages."""
    n = len(languages)
    requested = table["requested"] == 1 if "requested" in table else None
    reference = table if requested is None else table[requested]
    per_language = {}
    for lang in languages:
        present = table[lang] > 0
        per_language[lang] = {
            "ids": int(present.sum()),
            "missing_vs_all_languages": int((~present).sum()),
            "missing_vs_requested": None
            if requested is None
            else int((requested & ~present).sum()),
            "only_here": int((present & (table["n_languages"] == 1)).sum()),
        }
    common = table.loc[table["n_languages"] == n, "sentence_id"].astype(int).tolist()
    return {
        "languages": list(languages),
        "ids_in_any_language": int((table["n_languages"] > 0).sum()),
        "ids_requested": None if requested is None else int(requested.sum()),
        "ids_in_every_language": len(common),
        "reference_ids": int(len(reference)),
        "per_language": per_language,
        "common_ids": common,
    }
