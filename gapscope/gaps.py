"""Gap tables: modality gap vs language gap, length adaptation, lengths, and a headline.

The table functions take the tidy similarity table (its columns: docs/contract.md, "Outputs")
and return new DataFrames; nothing is modified in place. The length functions take the
pooled lengths of the activation stores (read by :func:`gapscope.stages.summarize.read_lengths`).

Conventions
-----------
- A *tap label* (:mod:`gapscope.taps`) names where a comparison was taken. Cross-lingual
  rows use ``tap_a`` (``tap_a == tap_b``); cross-modal rows use :func:`tap_label`, which is
  ``tap_a`` when both sides share the tap (``layer12``) and ``"<text tap>~<speech tap>"`` otherwise
  (``encoder_out~post_adaptor``). ``~`` is ASCII, safe in CSV, file names and shells.
- Means are plain means over pairs (one pair = one row of the similarity table); ``*_std`` is
  the sample standard deviation over pairs (ddof=1, NaN for a single pair).
- ``*_null`` is the mean of ``null_mean`` over pairs and ``*_calibrated`` the mean over pairs
  of ``score - null_mean``. Both are NaN unless every pair in the cell has a null, so that
  calibrated and raw means always cover the same pairs.
- Averages over languages (per resource group, and ``"all"`` over every language) are
  plain means with the sample std over languages next to them (``*_std``, NaN for one
  language) and ``n_languages``; they are NaN as soon as one language lacks the value.
- Resource group, family and script of a language come from the shipped language table
  (:mod:`gapscope.languages`); groups are ordered high, medium, low, then ``"all"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from gapscope.languages import ENGLISH
from gapscope.taps import TAP_SEPARATOR, last_layer, tap_label, tap_sort_key

__all__ = [
    "COMPARISONS",
    "GAP_COLUMNS",
    "DEFAULT_LENGTH_TAPS",
    "GROUP_ORDER",
    "cross_lingual_table",
    "cross_modal_table",
    "format_headline",
    "format_length_adaptation",
    "gap_table",
    "group_summary",
    "headline",
    "language_info",
    "language_order",
    "length_adaptation_effect",
    "length_ratio_groups",
    "length_ratios",
    "length_statistics",
    "length_taps",
    "modality_vs_language",
    "modality_vs_language_groups",
]

COMPARISONS: tuple[str, ...] = ("cross_modal", "cross_lingual_text", "cross_lingual_speech")
TapPair = tuple[str, str]


def _with_tap_label(similarity: pd.DataFrame, metric: str) -> pd.DataFrame:
    df = similarity[(similarity["metric"] == metric) & similarity["comparison"].isin(COMPARISONS)]
    df = df.copy()
    cross_modal = df["comparison"] == "cross_modal"
    df["tap"] = [
        tap_label(a, b) if cm else a
        for a, b, cm in zip(df["tap_a"], df["tap_b"], cross_modal, strict=True)
    ]
    df["calibrated"] = df["score"].astype(float) - df["null_mean"].astype(float)
    return df


def _gap_columns() -> list[str]:
    cols = ["model", "tap", "metric"]
    for comp in COMPARISONS:
        cols += [comp, f"{comp}_std", f"{comp}_null"]
    cols += [f"n_{comp}" for comp in COMPARISONS]
    cols += ["n_sentences", "modality_gap"]
    cols += [f"{comp}_calibrated" for comp in COMPARISONS]
    cols += ["modality_gap_calibrated"]
    return cols


GAP_COLUMNS: list[str] = _gap_columns()


def _strict_mean(values: pd.Series) -> float:
    """Mean that is NaN as soon as one value is missing."""
    arr = values.to_numpy(dtype=float)
    return float(arr.mean()) if arr.size and not np.isnan(arr).any() else math.nan


def _column(wide: pd.DataFrame, stat: str, comp: str) -> pd.Series:
    if (stat, comp) in wide.columns:
        return wide[(stat, comp)].astype(float)
    return pd.Series(np.nan, index=wide.index, dtype=float)


def gap_table(similarity: pd.DataFrame, *, metric: str = "svcca") -> pd.DataFrame:
    """One row per (model, tap label): mean/std/null per comparison, counts and gaps.

    ``modality_gap = cross_lingual_text - cross_modal``: positive means a sentence's typed
    translation is closer than its own audio, i.e. the modality gap exceeds the language gap.
    ``n_<comparison>`` counts the pairs averaged; ``n_sentences`` is the smallest ``n`` of
    the row's pairs. Column order: :data:`GAP_COLUMNS`.
    """
    df = _with_tap_label(similarity, metric)
    columns = list(GAP_COLUMNS)
    if df.empty:
        return pd.DataFrame(columns=columns)

    grouped = df.groupby(["model", "tap", "comparison"], sort=False)
    stats = pd.DataFrame(
        {
            "mean": grouped["score"].mean(),
            "std": grouped["score"].std(ddof=1),
            "null": grouped["null_mean"].agg(_strict_mean),
            "calibrated": grouped["calibrated"].agg(_strict_mean),
            "count": grouped["score"].size(),
        }
    )
    wide = stats.unstack("comparison")
    out = pd.DataFrame(index=wide.index)
    for comp in COMPARISONS:
        out[comp] = _column(wide, "mean", comp)
        out[f"{comp}_std"] = _column(wide, "std", comp)
        out[f"{comp}_null"] = _column(wide, "null", comp)
        out[f"{comp}_calibrated"] = _column(wide, "calibrated", comp)
        out[f"n_{comp}"] = _column(wide, "count", comp).fillna(0).astype(int)
    out["n_sentences"] = df.groupby(["model", "tap"], sort=False)["n"].min()
    out["modality_gap"] = out["cross_lingual_text"] - out["cross_modal"]
    out["modality_gap_calibrated"] = (
        out["cross_lingual_text_calibrated"] - out["cross_modal_calibrated"]
    )
    out = out.reset_index()
    out["metric"] = metric
    tap_rank = {t: i for i, t in enumerate(sorted(set(out["tap"]), key=tap_sort_key))}
    out["_rank"] = out["tap"].map(tap_rank)
    out = out.sort_values(["model", "_rank"], kind="stable")
    return out[columns].reset_index(drop=True)


def _cell_values(table: pd.DataFrame, key: str) -> dict[str, float]:
    """Row ``key`` of ``table`` as floats; every column NaN when the row is missing."""
    if key not in table.index:
        return {col: math.nan for col in table.columns}
    return {col: float(table.at[key, col]) for col in table.columns}


def length_adaptation_effect(
    similarity: pd.DataFrame,
    *,
    metric: str = "svcca",
    before: TapPair = ("encoder_out", "pre_adaptor"),
    after: TapPair = ("encoder_out", "post_adaptor"),
    groups: Mapping[str, str] | None = None,
    per_model: Mapping[str, tuple[TapPair, TapPair]] | None = None,
    models: Sequence[str] | None = None,
    overall: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-modal score before vs after length adaptation, per language and per group.

    ``before``/``after`` are (text tap, speech tap) pairs of cross-modal rows; ``per_model``
    maps a model to its own ``(before, after)`` and overrides the defaults for that model
    (each adapter family declares its own pair, see :func:`length_adaptation_pairs`).
    ``models`` restricts the models (default: every model in the table). ``groups`` maps
    language -> resource group; unmapped languages get group ``"unassigned"``; without
    ``groups`` everything is ``"all"``. ``overall`` adds a group ``"all"`` over every
    language of a model (only with ``groups``).

    Returns ``(per_language, per_group)``:

    - per_language: model, language, group, metric, before_tap, after_tap, before,
      before_null, before_calibrated, after, after_null, after_calibrated, delta
      (= after - before; NaN if either side is missing), delta_calibrated (= after_calibrated
      - before_calibrated; NaN without both nulls), n (sentences, smallest of both sides).
    - per_group: model, group, metric, before_tap, after_tap, n_languages (languages with a
      delta), before_mean, before_std, after_mean, after_std, delta_mean, delta_std,
      delta_calibrated_mean, delta_calibrated_std (sample std over languages, NaN for one
      language; calibrated values are NaN unless every language of the group has nulls).
      Groups follow the order of first appearance in ``groups``, then ``"unassigned"``,
      then ``"all"``.
    """
    per_model = per_model or {}
    lang_cols = [
        "model", "language", "group", "metric", "before_tap", "after_tap",
        "before", "before_null", "before_calibrated", "after", "after_null",
        "after_calibrated", "delta", "delta_calibrated", "n",
    ]  # fmt: skip
    values = ["before", "after", "delta", "delta_calibrated"]
    group_cols = [
        "model", "group", "metric", "before_tap", "after_tap", "n_languages",
        *[f"{v}_{stat}" for v in values for stat in ("mean", "std")],
    ]  # fmt: skip
    df = similarity[(similarity["metric"] == metric) & (similarity["comparison"] == "cross_modal")]
    if models is not None:
        df = df[df["model"].isin(list(models))]
    rows: list[dict[str, object]] = []
    for model, sub in df.groupby("model", sort=True):
        pair_before, pair_after = per_model.get(str(model), (before, after))
        sides = {}
        for side, (ta, tb) in (("before", pair_before), ("after", pair_after)):
            hit = sub[(sub["tap_a"] == ta) & (sub["tap_b"] == tb)].copy()
            hit["calibrated"] = hit["score"].astype(float) - hit["null_mean"].astype(float)
            grouped = hit.groupby("lang_a")
            sides[side] = pd.DataFrame(
                {
                    "score": grouped["score"].mean(),
                    "null": grouped["null_mean"].agg(_strict_mean),
                    "calibrated": grouped["calibrated"].agg(_strict_mean),
                    "n": grouped["n"].min(),
                }
            )
        languages = sorted(set(sides["before"].index) | set(sides["after"].index))
        for lang in languages:
            b, a = (_cell_values(sides[side], lang) for side in ("before", "after"))
            sizes = [v for v in (b["n"], a["n"]) if not math.isnan(v)]
            rows.append(
                {
                    "model": model,
                    "language": lang,
                    "group": "all" if groups is None else groups.get(lang, "unassigned"),
                    "metric": metric,
                    "before_tap": tap_label(*pair_before),
                    "after_tap": tap_label(*pair_after),
                    "before": b["score"],
                    "before_null": b["null"],
                    "before_calibrated": b["calibrated"],
                    "after": a["score"],
                    "after_null": a["null"],
                    "after_calibrated": a["calibrated"],
                    "delta": a["score"] - b["score"],
                    "delta_calibrated": a["calibrated"] - b["calibrated"],
                    "n": min(sizes) if sizes else math.nan,
                }
            )
    per_language = pd.DataFrame(rows, columns=lang_cols)
    if per_language.empty:
        return per_language, pd.DataFrame(columns=group_cols)

    order = list(dict.fromkeys(groups.values())) if groups else []
    valid = per_language.dropna(subset=["delta"])
    per_group = group_summary(
        valid,
        keys=["model", "metric", "before_tap", "after_tap"],
        values=values,
        overall=overall and groups is not None,
        order=[*order, "unassigned"],
    )
    return per_language, per_group[group_cols].reset_index(drop=True)


_HEADLINE_VALUES = ("cross_modal", "cross_lingual_text", "cross_lingual_speech")


def _lookup(rows: pd.DataFrame, tap: str, column: str) -> float:
    hit = rows.loc[rows["tap"] == tap, column]
    return float(hit.iloc[0]) if len(hit) else math.nan


def headline(gaps: pd.DataFrame) -> pd.DataFrame:
    """Per model, the gap table's values at the last layer and at the best cross-modal tap.

    ``at`` is ``"last layer"`` (highest ``layerNN`` with a cross-modal score) or
    ``"best"`` (tap with the highest raw cross-modal mean). For a pair label ``a~b`` the
    cross-lingual text value is read at tap ``a`` and cross-lingual speech at tap ``b``.
    Columns: model, at, tap, metric, n_sentences, cross_modal, cross_modal_null,
    cross_lingual_text, cross_lingual_text_null, cross_lingual_speech,
    cross_lingual_speech_null, modality_gap.
    """
    columns = ["model", "at", "tap", "metric", "n_sentences"]
    for comp in _HEADLINE_VALUES:
        columns += [comp, f"{comp}_null"]
    columns.append("modality_gap")
    out: list[dict[str, object]] = []
    for model, rows in gaps.groupby("model", sort=False):
        with_cm = rows.dropna(subset=["cross_modal"])
        if with_cm.empty:
            continue
        best = str(with_cm.loc[with_cm["cross_modal"].idxmax(), "tap"])
        picks = [
            ("last layer", last_layer(rows.loc[rows["cross_modal"].notna(), "tap"])),
            ("best", best),
        ]
        for at, tap in picks:
            if tap is None:
                continue
            text_tap, _, speech_tap = tap.partition(TAP_SEPARATOR)
            speech_tap = speech_tap or text_tap
            cm = _lookup(rows, tap, "cross_modal")
            text = _lookup(rows, text_tap, "cross_lingual_text")
            out.append(
                {
                    "model": model,
                    "at": at,
                    "tap": tap,
                    "metric": str(rows["metric"].iloc[0]),
                    "n_sentences": _lookup(rows, tap, "n_sentences"),
                    "cross_modal": cm,
                    "cross_modal_null": _lookup(rows, tap, "cross_modal_null"),
                    "cross_lingual_text": text,
                    "cross_lingual_text_null": _lookup(rows, text_tap, "cross_lingual_text_null"),
                    "cross_lingual_speech": _lookup(rows, speech_tap, "cross_lingual_speech"),
                    "cross_lingual_speech_null": _lookup(
                        rows, speech_tap, "cross_lingual_speech_null"
                    ),
                    "modality_gap": text - cm,
                }
            )
    return pd.DataFrame(out, columns=columns)


def _fmt_score(score: float, null: float) -> str:
    if pd.isna(score):
        return "-"
    null_text = "  n/a" if pd.isna(null) else f"{null:.3f}"
    return f"{score:.3f} (null {null_text})"


def _fmt_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_headline(gaps: pd.DataFrame) -> str:
    """Fixed-width plain-text table of :func:`headline` (3 decimals; gap = text - modal)."""
    table = headline(gaps)
    header = [
        "model", "at", "tap", "cross-modal", "cross-lingual text",
        "cross-lingual speech", "gap", "N", "metric",
    ]  # fmt: skip
    body = [
        [
            str(r.model),
            str(r.at),
            str(r.tap),
            _fmt_score(r.cross_modal, r.cross_modal_null),
            _fmt_score(r.cross_lingual_text, r.cross_lingual_text_null),
            _fmt_score(r.cross_lingual_speech, r.cross_lingual_speech_null),
            "-" if pd.isna(r.modality_gap) else f"{r.modality_gap:+.3f}",
            "-" if pd.isna(r.n_sentences) else str(int(r.n_sentences)),
            str(r.metric),
        ]
        for r in table.itertuples(index=False)
    ]
    if not body:
        return "(no cross-modal scores)"
    return _fmt_table(header, body)


# --------------------------------------------------------------------------------------
# Languages and groups

GROUP_ORDER: tuple[str, ...] = ("high", "medium", "low")
OVERALL = "all"


def language_info(codes: Sequence[str]) -> pd.DataFrame:
    """language, name, group (resource level), family, script for each code, in order.

    Codes missing from the language table get group ``"unassigned"`` and empty metadata.
    """
    from gapscope import languages

    rows = []
    for code in codes:
        try:
            lang = languages.get(code)
        except languages.UnknownLanguageError:
            rows.append((code, code, "unassigned", "", code.rpartition("_")[2]))
            continue
        rows.append((code, lang.name, lang.resource, lang.family, lang.script))
    return pd.DataFrame(rows, columns=["language", "name", "group", "family", "script"])


def _group_rank(group: str) -> tuple[int, str]:
    if group in GROUP_ORDER:
        return (0, str(GROUP_ORDER.index(group)))
    return (2, "") if group == OVERALL else (1, group)


def language_order(codes: Sequence[str], by: str = "resource") -> list[str]:
    """Order languages for tables and heatmaps.

    ``by``: ``resource`` (high, medium, low; then family, then code), ``family`` (family,
    then resource, then code), ``code`` (alphabetical) or ``config`` (as given).
    """
    codes = list(dict.fromkeys(codes))
    if by == "config":
        return codes
    if by == "code":
        return sorted(codes)
    info = language_info(codes).set_index("language")
    if by == "resource":
        return sorted(
            codes, key=lambda c: (_group_rank(info.at[c, "group"]), info.at[c, "family"], c)
        )
    if by == "family":
        return sorted(
            codes, key=lambda c: (info.at[c, "family"], _group_rank(info.at[c, "group"]), c)
        )
    raise ValueError(f"language order {by!r}: expected resource, family, code or config")


def _annotate(table: pd.DataFrame, column: str = "language") -> pd.DataFrame:
    """Add group, family and script of ``table[column]`` after that column."""
    info = language_info(sorted(set(table[column]))).set_index("language")
    out = table.copy()
    at = list(out.columns).index(column) + 1
    for offset, field in enumerate(("group", "family", "script")):
        values = out[column].map(info[field]) if len(out) else pd.Series(dtype=object)
        out.insert(at + offset, field, values)
    return out


def _sort_rows(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Sort by model, tap (tap order), language (resource order) and group (group order)."""
    if table.empty:
        return table.reset_index(drop=True)
    sort_cols = []
    out = table.copy()
    for key in keys:
        rank_col = f"_rank_{key}"
        values = list(dict.fromkeys(out[key]))
        if key in ("tap", "text_tap", "speech_tap"):
            ranked = sorted(values, key=tap_sort_key)
        elif key == "language":
            ranked = language_order(values, "resource")
        elif key == "group":
            ranked = sorted(values, key=_group_rank)
        else:
            ranked = sorted(values, key=str)
        out[rank_col] = out[key].map({v: i for i, v in enumerate(ranked)})
        sort_cols.append(rank_col)
    out = out.sort_values(sort_cols, kind="stable").drop(columns=sort_cols)
    return out.reset_index(drop=True)


def _strict_std(values: pd.Series) -> float:
    """Sample std (ddof=1); NaN for fewer than two values or as soon as one is missing."""
    arr = values.to_numpy(dtype=float)
    if arr.size < 2 or np.isnan(arr).any():
        return math.nan
    return float(arr.std(ddof=1))


def group_summary(
    table: pd.DataFrame,
    *,
    keys: Sequence[str],
    values: Sequence[str],
    group: str = "group",
    overall: bool = True,
    order: Sequence[str] = GROUP_ORDER,
) -> pd.DataFrame:
    """Mean and spread over languages of ``values`` per ``keys`` and group.

    One row per (keys, group) with ``n_languages`` (rows averaged) and, per value,
    ``<value>_mean`` and ``<value>_std`` (sample std over languages, NaN for one language).
    Both are NaN as soon as one language of the cell lacks the value, so every mean covers
    the same languages. ``overall`` adds a group ``"all"`` over every row of the keys. Groups
    are ordered by ``order``, then alphabetically, then ``"all"``.
    """
    columns = [*keys, group, "n_languages"]
    columns += [f"{v}_{stat}" for v in values for stat in ("mean", "std")]
    if table.empty:
        return pd.DataFrame(columns=columns)
    parts = [table]
    if overall:
        parts.append(table.assign(**{group: OVERALL}))
    frame = pd.concat(parts, ignore_index=True)
    grouped = frame.groupby([*keys, group], sort=False, dropna=False)
    out = grouped.size().rename("n_languages").to_frame()
    for value in values:
        out[f"{value}_mean"] = grouped[value].agg(_strict_mean)
        out[f"{value}_std"] = grouped[value].agg(_strict_std)
    out = out.reset_index()
    rank = {g: i for i, g in enumerate(order)}
    out["_rank"] = [
        (0, rank[g], "") if g in rank else ((2, 0, "") if g == OVERALL else (1, 0, str(g)))
        for g in out[group]
    ]
    out = out.sort_values("_rank", kind="stable").drop(columns="_rank")
    return out[columns].reset_index(drop=True)


# --------------------------------------------------------------------------------------
# Per-language similarity tables


def _select(similarity: pd.DataFrame, metric: str, comparison: str) -> pd.DataFrame:
    df = similarity[(similarity["metric"] == metric) & (similarity["comparison"] == comparison)]
    return df.copy()


def _text_speech_sides(df: pd.DataFrame) -> pd.DataFrame:
    """Cross-modal rows with the text side first (swaps rows stored speech-first)."""
    out = df.copy()
    swap = out["modality_a"] == "speech"
    for a, b in (("tap_a", "tap_b"), ("k_a", "k_b"), ("lang_a", "lang_b")):
        out.loc[swap, [a, b]] = out.loc[swap, [b, a]].to_numpy(copy=True)
    return out


CROSS_MODAL_COLUMNS = [
    "model", "tap", "text_tap", "speech_tap", "language", "group", "family", "script",
    "metric", "score", "null_mean", "null_std", "calibrated", "heldout", "n", "k_text",
    "k_speech",
]  # fmt: skip


def cross_modal_table(similarity: pd.DataFrame, *, metric: str = "svcca") -> pd.DataFrame:
    """Cross-modal similarity per model, tap and language, raw and calibrated side by side.

    Columns: :data:`CROSS_MODAL_COLUMNS`. ``tap`` is the tap label (:func:`tap_label` of
    text tap and speech tap), ``calibrated = score - null_mean`` (NaN without a null),
    ``heldout`` the split-half held-out score, ``n`` the sentences compared and
    ``k_text``/``k_speech`` the kept dimensions. Several rows for one cell are averaged.
    """
    df = _text_speech_sides(_select(similarity, metric, "cross_modal"))
    if df.empty:
        return pd.DataFrame(columns=CROSS_MODAL_COLUMNS)
    df["calibrated"] = df["score"].astype(float) - df["null_mean"].astype(float)
    grouped = df.groupby(["model", "tap_a", "tap_b", "lang_a"], sort=False)
    out = grouped.agg(
        score=("score", "mean"),
        null_mean=("null_mean", _strict_mean),
        null_std=("null_std", _strict_mean),
        calibrated=("calibrated", _strict_mean),
        heldout=("heldout", _strict_mean),
        n=("n", "min"),
        k_text=("k_a", "min"),
        k_speech=("k_b", "min"),
    ).reset_index()
    out = out.rename(columns={"tap_a": "text_tap", "tap_b": "speech_tap", "lang_a": "language"})
    out["tap"] = [tap_label(a, b) for a, b in zip(out["text_tap"], out["speech_tap"], strict=True)]
    out["metric"] = metric
    out = _annotate(out)
    return _sort_rows(out[CROSS_MODAL_COLUMNS], ["model", "tap", "language"])


CROSS_LINGUAL_COLUMNS = [
    "model", "modality", "tap", "scope", "metric", "n_pairs", "n_languages", "mean", "std",
    "null", "calibrated", "calibrated_std", "heldout", "n_sentences", "k_min", "k_max",
]  # fmt: skip


def cross_lingual_table(
    similarity: pd.DataFrame, *, metric: str = "svcca", english: str = ENGLISH
) -> pd.DataFrame:
    """Cross-lingual similarity of text and of speech per model and tap, over language pairs.

    ``scope`` is ``all_pairs`` (every pair in the table) or ``english_centric`` (pairs with
    ``english``; absent when no pair has it). ``mean``/``std`` are over pairs, ``null`` the
    mean null, ``calibrated``/``calibrated_std`` mean and std over pairs of score - null
    (NaN unless every pair has a null), ``n_sentences`` the smallest N, ``k_min``/``k_max``
    the range of kept dimensions. Columns: :data:`CROSS_LINGUAL_COLUMNS`.
    """
    parts = []
    for modality in ("text", "speech"):
        df = _select(similarity, metric, f"cross_lingual_{modality}")
        df["modality"] = modality
        df["tap"] = df["tap_a"]
        parts.append(df.assign(scope="all_pairs"))
        english_rows = df[(df["lang_a"] == english) | (df["lang_b"] == english)]
        parts.append(english_rows.assign(scope="english_centric"))
    df = pd.concat(parts, ignore_index=True)
    if df.empty:
        return pd.DataFrame(columns=CROSS_LINGUAL_COLUMNS)
    df["calibrated"] = df["score"].astype(float) - df["null_mean"].astype(float)
    rows = []
    for (model, modality, tap, scope), sub in df.groupby(
        ["model", "modality", "tap", "scope"], sort=False
    ):
        ks = pd.concat([sub["k_a"], sub["k_b"]]).astype(float)
        rows.append(
            {
                "model": model,
                "modality": modality,
                "tap": tap,
                "scope": scope,
                "metric": metric,
                "n_pairs": len(sub),
                "n_languages": len(set(sub["lang_a"]) | set(sub["lang_b"])),
                "mean": float(sub["score"].mean()),
                "std": _strict_std(sub["score"]),
                "null": _strict_mean(sub["null_mean"]),
                "calibrated": _strict_mean(sub["calibrated"]),
                "calibrated_std": _strict_std(sub["calibrated"]),
                "heldout": _strict_mean(sub["heldout"]),
                "n_sentences": sub["n"].min(),
                "k_min": ks.min(),
                "k_max": ks.max(),
            }
        )
    out = pd.DataFrame(rows, columns=CROSS_LINGUAL_COLUMNS)
    out["_m"] = out["modality"].map({"text": 0, "speech": 1})
    out["_s"] = out["scope"].map({"all_pairs": 0, "english_centric": 1})
    out = _sort_rows(out, ["model", "_m", "tap", "_s"])
    return out[CROSS_LINGUAL_COLUMNS]


def _per_language_cross_lingual(similarity: pd.DataFrame, metric: str, modality: str):
    """Per (model, tap, language): mean/null/calibrated over the pairs containing it."""
    df = _select(similarity, metric, f"cross_lingual_{modality}")
    df["calibrated"] = df["score"].astype(float) - df["null_mean"].astype(float)
    both = pd.concat(
        [df.assign(language=df["lang_a"]), df.assign(language=df["lang_b"])], ignore_index=True
    )
    grouped = both.groupby(["model", "tap_a", "language"], sort=False)
    return pd.DataFrame(
        {
            "mean": grouped["score"].mean(),
            "null": grouped["null_mean"].agg(_strict_mean),
            "calibrated": grouped["calibrated"].agg(_strict_mean),
            "n_pairs": grouped["score"].size(),
        }
    )


MODALITY_LANGUAGE_VALUES = [
    "cross_modal", "cross_modal_calibrated", "cross_lingual_text",
    "cross_lingual_text_calibrated", "cross_lingual_speech", "cross_lingual_speech_calibrated",
    "modality_gap", "modality_gap_calibrated", "text_minus_speech",
    "text_minus_speech_calibrated",
]  # fmt: skip
MODALITY_LANGUAGE_COLUMNS = [
    "model", "tap", "text_tap", "speech_tap", "language", "group", "family", "script",
    "metric", "n", "cross_modal", "cross_modal_null", "cross_modal_calibrated",
    "cross_lingual_text", "cross_lingual_text_null", "cross_lingual_text_calibrated",
    "n_text_pairs", "cross_lingual_speech", "cross_lingual_speech_null",
    "cross_lingual_speech_calibrated", "n_speech_pairs", "modality_gap",
    "modality_gap_calibrated", "text_minus_speech", "text_minus_speech_calibrated",
]  # fmt: skip


def modality_vs_language(similarity: pd.DataFrame, *, metric: str = "svcca") -> pd.DataFrame:
    """Per model, cross-modal tap and language: the modality gap next to the language gaps.

    For language L at tap label ``t~s`` (text tap t, speech tap s): ``cross_modal`` is text(L)
    vs speech(L); ``cross_lingual_text`` is the mean over the text pairs containing L at t,
    ``cross_lingual_speech`` the same for speech pairs at s. ``modality_gap =
    cross_lingual_text - cross_modal`` (positive: L's typed translation is closer than its
    own audio, i.e. the modality gap exceeds the language gap) and ``text_minus_speech =
    cross_lingual_text - cross_lingual_speech`` (positive: speech differs more across
    languages than text). ``*_calibrated`` use score - null throughout.
    Columns: :data:`MODALITY_LANGUAGE_COLUMNS`.
    """
    cm = cross_modal_table(similarity, metric=metric)
    if cm.empty:
        return pd.DataFrame(columns=MODALITY_LANGUAGE_COLUMNS)
    out = cm.rename(
        columns={
            "score": "cross_modal",
            "null_mean": "cross_modal_null",
            "calibrated": "cross_modal_calibrated",
        }
    )
    for modality, tap_col in (("text", "text_tap"), ("speech", "speech_tap")):
        per_lang = _per_language_cross_lingual(similarity, metric, modality)
        keys = list(zip(out["model"], out[tap_col], out["language"], strict=True))
        for stat, column in (
            ("mean", f"cross_lingual_{modality}"),
            ("null", f"cross_lingual_{modality}_null"),
            ("calibrated", f"cross_lingual_{modality}_calibrated"),
            ("n_pairs", f"n_{modality}_pairs"),
        ):
            values = per_lang[stat] if len(per_lang) else pd.Series(dtype=float)
            out[column] = [values.get(key, math.nan) for key in keys]
        out[f"n_{modality}_pairs"] = out[f"n_{modality}_pairs"].fillna(0).astype(int)
    for suffix in ("", "_calibrated"):
        text = out[f"cross_lingual_text{suffix}"].astype(float)
        out[f"modality_gap{suffix}"] = text - out[f"cross_modal{suffix}"].astype(float)
        out[f"text_minus_speech{suffix}"] = text - out[f"cross_lingual_speech{suffix}"]
    return out[MODALITY_LANGUAGE_COLUMNS].reset_index(drop=True)


def modality_vs_language_groups(per_language: pd.DataFrame) -> pd.DataFrame:
    """:func:`modality_vs_language` averaged over languages per resource group and overall.

    Columns: model, tap, metric, group, n_languages, ``<value>_mean``/``<value>_std`` for
    each of :data:`MODALITY_LANGUAGE_VALUES`, and ``n_modality_gap_larger`` (languages whose
    raw modality gap is positive, i.e. whose cross-modal score is below their cross-lingual
    text score).
    """
    out = group_summary(
        per_language, keys=["model", "tap", "metric"], values=MODALITY_LANGUAGE_VALUES
    )
    if out.empty:
        return out.assign(n_modality_gap_larger=pd.Series(dtype=int))
    positive = per_language.assign(_pos=per_language["modality_gap"] > 0)
    counts = {
        **positive.groupby(["model", "tap", "group"])["_pos"].sum().to_dict(),
        **{
            (m, t, OVERALL): v
            for (m, t), v in positive.groupby(["model", "tap"])["_pos"].sum().items()
        },
    }
    out["n_modality_gap_larger"] = [
        int(counts.get((m, t, g), 0))
        for m, t, g in zip(out["model"], out["tap"], out["group"], strict=True)
    ]
    return _sort_rows(out, ["model", "tap", "group"])


# --------------------------------------------------------------------------------------
# Pooled lengths from the activation stores

LengthKey = tuple[str, str, str]
"""(model, language, modality) of one store."""
Lengths = Mapping[LengthKey, tuple[np.ndarray, Mapping[str, np.ndarray]]]
"""Per store: sentence ids and, per tap, the pooled length of each sentence."""


LENGTH_STAT_COLUMNS = [
    "model", "language", "group", "family", "script", "modality", "tap", "n_sentences",
    "mean", "std", "median", "min", "max",
]  # fmt: skip


def length_statistics(lengths: Lengths) -> pd.DataFrame:
    """Per store and tap: sentences and mean/std/median/min/max of the pooled length.

    Text lengths are tokens, speech lengths are encoder frames (the unit of each tap).
    Columns: :data:`LENGTH_STAT_COLUMNS`.
    """
    rows = []
    for (model, language, modality), (_, taps) in lengths.items():
        for tap, values in taps.items():
            arr = np.asarray(values, dtype=float)
            rows.append(
                {
                    "model": model,
                    "language": language,
                    "modality": modality,
                    "tap": tap,
                    "n_sentences": int(arr.size),
                    "mean": float(arr.mean()) if arr.size else math.nan,
                    "std": float(arr.std(ddof=1)) if arr.size > 1 else math.nan,
                    "median": float(np.median(arr)) if arr.size else math.nan,
                    "min": float(arr.min()) if arr.size else math.nan,
                    "max": float(arr.max()) if arr.size else math.nan,
                }
            )
    if not rows:
        return pd.DataFrame(columns=LENGTH_STAT_COLUMNS)
    out = _annotate(pd.DataFrame(rows))
    out["_m"] = out["modality"].map({"text": 0, "speech": 1})
    return _sort_rows(out, ["model", "language", "_m", "tap"])[LENGTH_STAT_COLUMNS]


LENGTH_RATIO_VALUES = [
    "text_tokens", "speech_before", "speech_after", "ratio_before", "ratio_after", "reduction",
]  # fmt: skip
LENGTH_RATIO_COLUMNS = [
    "model", "language", "group", "family", "script", "text_tap", "speech_before_tap",
    "speech_after_tap", "n_sentences",
    *[c for v in LENGTH_RATIO_VALUES for c in (v, f"{v}_std")],
]  # fmt: skip
LengthTaps = tuple[str, str, str | None]
"""(text tap, speech tap before length adaptation, speech tap after it or None)."""


DEFAULT_LENGTH_TAPS: LengthTaps = ("layer00", "layer00", None)
"""Length taps of a family that declares no length adaptation: the embeddings on both sides."""


def length_taps(pairs: tuple[TapPair, TapPair] | None) -> LengthTaps:
    """The taps whose lengths show a length adaptation declared as (before, after) pairs.

    The text tap of the ``before`` pair and the speech taps of both pairs; without a
    declaration, :data:`DEFAULT_LENGTH_TAPS`.
    """
    if pairs is None:
        return DEFAULT_LENGTH_TAPS
    (text_tap, speech_before), (_, speech_after) = pairs
    return (text_tap, speech_before, speech_after)


def length_ratios(lengths: Lengths, taps: Mapping[str, LengthTaps] | None = None) -> pd.DataFrame:
    """Per model and language: text tokens, speech frames before/after adaptation, ratios.

    ``taps`` maps a model to its (text tap, speech before, speech after) taps (default:
    :data:`DEFAULT_LENGTH_TAPS`). Text and speech lengths are aligned by sentence id
    (ids present in both stores). Per sentence: ``ratio_before`` = speech frames before /
    text tokens, ``ratio_after`` = speech frames after / text tokens and ``reduction`` =
    frames before / frames after; each column is the mean over sentences and ``*_std`` the
    sample std over sentences. Missing taps give NaN. Columns: :data:`LENGTH_RATIO_COLUMNS`.
    """
    taps = taps or {}
    rows = []
    models = sorted({m for m, _, _ in lengths})
    for model in models:
        text_tap, before_tap, after_tap = taps.get(model, DEFAULT_LENGTH_TAPS)
        for language in sorted({lang for m, lang, _ in lengths if m == model}):
            text = lengths.get((model, language, "text"))
            speech = lengths.get((model, language, "speech"))
            if text is None or speech is None:
                continue
            ids = np.intersect1d(text[0], speech[0])

            def aligned(store, tap, ids=ids):
                sentence_ids, values = store
                if tap is None or tap not in values:
                    return np.full(ids.size, np.nan)
                index = pd.Series(np.asarray(values[tap], dtype=float), index=sentence_ids)
                return index.loc[ids].to_numpy()

            per_sentence = {
                "text_tokens": aligned(text, text_tap),
                "speech_before": aligned(speech, before_tap),
                "speech_after": aligned(speech, after_tap),
            }
            with np.errstate(divide="ignore", invalid="ignore"):
                per_sentence["ratio_before"] = (
                    per_sentence["speech_before"] / per_sentence["text_tokens"]
                )
                per_sentence["ratio_after"] = (
                    per_sentence["speech_after"] / per_sentence["text_tokens"]
                )
                per_sentence["reduction"] = (
                    per_sentence["speech_before"] / per_sentence["speech_after"]
                )
            row = {
                "model": model,
                "language": language,
                "text_tap": text_tap,
                "speech_before_tap": before_tap,
                "speech_after_tap": after_tap if after_tap is not None else "",
                "n_sentences": int(ids.size),
            }
            for name, values in per_sentence.items():
                row[name] = _strict_mean(pd.Series(values))
                row[f"{name}_std"] = _strict_std(pd.Series(values))
            rows.append(row)
    if not rows:
        return pd.DataFrame(columns=LENGTH_RATIO_COLUMNS)
    out = _annotate(pd.DataFrame(rows))
    return _sort_rows(out, ["model", "language"])[LENGTH_RATIO_COLUMNS]


def length_ratio_groups(ratios: pd.DataFrame) -> pd.DataFrame:
    """:func:`length_ratios` averaged over languages per resource group and overall."""
    return group_summary(
        ratios,
        keys=["model", "text_tap", "speech_before_tap", "speech_after_tap"],
        values=LENGTH_RATIO_VALUES,
    )


def format_length_adaptation(per_group: pd.DataFrame) -> str:
    """Fixed-width table of :func:`length_adaptation_effect`'s per-group rows (3 decimals)."""
    if per_group.empty:
        return "(no length-adaptation taps)"

    def num(value: float, signed: bool = False) -> str:
        if pd.isna(value):
            return "-"
        return f"{value:+.3f}" if signed else f"{value:.3f}"

    header = ["model", "taps", "group", "langs", "before", "after", "delta", "delta calibrated"]
    body = [
        [
            str(r.model),
            f"{r.before_tap} -> {r.after_tap}",
            str(r.group),
            str(int(r.n_languages)),
            num(r.before_mean),
            num(r.after_mean),
            f"{num(r.delta_mean, True)} ± {num(r.delta_std)}",
            f"{num(r.delta_calibrated_mean, True)} ± {num(r.delta_calibrated_std)}",
        ]
        for r in per_group.itertuples(index=False)
    ]
    return _fmt_table(header, body)
