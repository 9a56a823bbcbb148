"""Gap tables: modality gap vs language gap, length adaptation, and a terminal headline.

All functions take the tidy similarity table (see DESIGN.md, "Similarity and summary
outputs") and return new DataFrames; nothing is modified in place.

Conventions
-----------
- A *tap label* names where a comparison was taken. Cross-lingual rows use ``tap_a``
  (``tap_a == tap_b``); cross-modal rows use :func:`tap_label`, which is ``tap_a`` when both
  sides share the tap (``layer12``) and ``"<text tap>~<speech tap>"`` otherwise
  (``encoder_out~post_adaptor``). ``~`` is ASCII, safe in CSV, file names and shells.
- Means are plain means over pairs (one pair = one row of the similarity table); ``*_std`` is
  the sample standard deviation over pairs (ddof=1, NaN for a single pair).
- ``*_null`` is the mean of ``null_mean`` over pairs and ``*_calibrated`` the mean over pairs
  of ``score - null_mean``. Both are NaN unless every pair in the cell has a null, so that
  calibrated and raw means always cover the same pairs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "COMPARISONS",
    "GAP_COLUMNS",
    "NAMED_TAP_ORDER",
    "TAP_SEPARATOR",
    "format_headline",
    "gap_table",
    "headline",
    "layer_index",
    "length_adaptation_effect",
    "tap_label",
    "tap_sort_key",
]

COMPARISONS: tuple[str, ...] = ("cross_modal", "cross_lingual_text", "cross_lingual_speech")
NAMED_TAP_ORDER: tuple[str, ...] = (
    "encoder_out",
    "pre_adaptor",
    "post_adaptor",
    "pooled",
    "qformer_in",
    "qformer_out",
)
TAP_SEPARATOR = "~"
_LAYER_RE = re.compile(r"layer(\d+)")

TapPair = tuple[str, str]


def tap_label(tap_a: str, tap_b: str) -> str:
    """Label of a tap pair: ``tap_a`` if both sides are equal, else ``"tap_a~tap_b"``."""
    return tap_a if tap_a == tap_b else f"{tap_a}{TAP_SEPARATOR}{tap_b}"


def layer_index(tap: str) -> int | None:
    """Layer number of a ``layerNN`` tap, else None."""
    match = _LAYER_RE.fullmatch(tap)
    return int(match.group(1)) if match else None


def _single_tap_key(tap: str) -> tuple[int, int, str]:
    layer = layer_index(tap)
    if layer is not None:
        return (0, layer, "")
    if tap in NAMED_TAP_ORDER:
        return (1, NAMED_TAP_ORDER.index(tap), "")
    return (2, 0, tap)


def tap_sort_key(tap: str) -> tuple[int | str, ...]:
    """Sort key: layers numerically, then named taps in :data:`NAMED_TAP_ORDER`, then
    unknown names alphabetically. A pair label ``a~b`` sorts right after ``a`` by ``b``."""
    first, _, second = tap.partition(TAP_SEPARATOR)
    tail = _single_tap_key(second) if second else (-1, 0, "")
    return (*_single_tap_key(first), *tail)


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


def length_adaptation_effect(
    similarity: pd.DataFrame,
    *,
    metric: str = "svcca",
    before: TapPair = ("encoder_out", "pre_adaptor"),
    after: TapPair = ("encoder_out", "post_adaptor"),
    groups: Mapping[str, str] | None = None,
    per_model: Mapping[str, tuple[TapPair, TapPair]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cross-modal score before vs after length adaptation, per language and per group.

    ``before``/``after`` are (text tap, speech tap) pairs of cross-modal rows; ``per_model``
    maps a model to its own ``(before, after)`` and overrides the defaults for that model
    (each adapter family declares its own pair). ``groups`` maps language -> resource group;
    unmapped languages get group ``"unassigned"``; without ``groups`` everything is ``"all"``.

    Returns ``(per_language, per_group)``:

    - per_language: model, language, group, metric, before_tap, after_tap, before, after,
      delta (= after - before; NaN if either side is missing).
    - per_group: model, group, metric, n_languages (languages with a delta), before_mean,
      after_mean, delta_mean, delta_std (sample std, NaN for one language). Groups follow
      the order of first appearance in ``groups``, then ``"unassigned"``.
    """
    per_model = per_model or {}
    lang_cols = [
        "model", "language", "group", "metric",
        "before_tap", "after_tap", "before", "after", "delta",
    ]  # fmt: skip
    group_cols = [
        "model", "group", "metric", "n_languages",
        "before_mean", "after_mean", "delta_mean", "delta_std",
    ]  # fmt: skip
    df = similarity[(similarity["metric"] == metric) & (similarity["comparison"] == "cross_modal")]
    rows: list[dict[str, object]] = []
    for model, sub in df.groupby("model", sort=True):
        pair_before, pair_after = per_model.get(str(model), (before, after))
        scores = {}
        for side, (ta, tb) in (("before", pair_before), ("after", pair_after)):
            hit = sub[(sub["tap_a"] == ta) & (sub["tap_b"] == tb)]
            scores[side] = hit.groupby("lang_a")["score"].mean()
        languages = sorted(set(scores["before"].index) | set(scores["after"].index))
        for lang in languages:
            b = float(scores["before"].get(lang, math.nan))
            a = float(scores["after"].get(lang, math.nan))
            group = "all" if groups is None else groups.get(lang, "unassigned")
            rows.append(
                {
                    "model": model,
                    "language": lang,
                    "group": group,
                    "metric": metric,
                    "before_tap": tap_label(*pair_before),
                    "after_tap": tap_label(*pair_after),
                    "before": b,
                    "after": a,
                    "delta": a - b,
                }
            )
    per_language = pd.DataFrame(rows, columns=lang_cols)
    if per_language.empty:
        return per_language, pd.DataFrame(columns=group_cols)

    order = list(dict.fromkeys(groups.values())) if groups else []
    rank = {g: i for i, g in enumerate([*order, "all", "unassigned"])}
    valid = per_language.dropna(subset=["delta"])
    per_group = (
        valid.groupby(["model", "group"], sort=False)
        .agg(
            n_languages=("delta", "size"),
            before_mean=("before", "mean"),
            after_mean=("after", "mean"),
            delta_mean=("delta", "mean"),
            delta_std=("delta", lambda s: s.std(ddof=1)),
        )
        .reset_index()
    )
    per_group["metric"] = metric
    per_group["_rank"] = per_group["group"].map(rank)
    per_group = per_group.sort_values(["model", "_rank"], kind="stable")
    return per_language, per_group[group_cols].reset_index(drop=True)


_HEADLINE_VALUES = ("cross_modal", "cross_lingual_text", "cross_lingual_speech")


def _last_layer_tap(rows: pd.DataFrame) -> str | None:
    layered = [
        (layer_index(t), t)
        for t, cm in zip(rows["tap"], rows["cross_modal"], strict=True)
        if layer_index(t) is not None and not pd.isna(cm)
    ]
    return max(layered)[1] if layered else None


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
        picks = [("last layer", _last_layer_tap(rows)), ("best", best)]
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
