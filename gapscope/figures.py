"""Figures from the tidy similarity table.

Every plot function takes the similarity table and an output *stem* (a path without
extension), writes ``<stem>.svg`` and ``<stem>.png`` (parent folders are created) and
returns the written paths. Figures are drawn on a private Agg canvas, so importing this
module never changes the global matplotlib backend. Colours are Okabe-Ito (colour-blind
safe) and each comparison also has its own marker. SVG text stays text (editable,
searchable) and the SVG output is byte-stable across runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gapscope.gaps import COMPARISONS, GROUP_ORDER, OVERALL, language_info
from gapscope.taps import last_layer, layer_index

__all__ = [
    "COMPARISON_STYLE",
    "MODEL_COLORS",
    "METRIC_COLORS",
    "METRIC_LABELS",
    "NothingToPlot",
    "OKABE_ITO",
    "default_heatmap_taps",
    "language_matrix",
    "placeholder_figure",
    "plot_language_heatmap",
    "plot_language_heatmaps",
    "plot_layer_curves",
    "plot_length_adaptation",
    "plot_metrics_by_layer",
    "plot_modality_vs_language",
    "plot_model_comparison",
    "save_figure",
]

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

COMPARISON_STYLE: dict[str, dict[str, str]] = {
    "cross_modal": {"label": "cross-modal", "color": OKABE_ITO["blue"], "marker": "o"},
    "cross_lingual_text": {
        "label": "cross-lingual text",
        "color": OKABE_ITO["orange"],
        "marker": "s",
    },
    "cross_lingual_speech": {
        "label": "cross-lingual speech",
        "color": OKABE_ITO["green"],
        "marker": "^",
    },
}

METRIC_LABELS: dict[str, str] = {
    "svcca": "SVCCA",
    "pwcca": "PWCCA",
    "cka": "linear CKA",
    "cka_debiased": "debiased linear CKA",
    "retrieval": "retrieval (margin)",
    "retrieval_cosine": "retrieval (cosine)",
    "mknn": "mutual k-NN",
}
METRIC_COLORS: dict[str, str] = {
    "svcca": OKABE_ITO["blue"],
    "pwcca": OKABE_ITO["sky_blue"],
    "cka": OKABE_ITO["vermillion"],
    "cka_debiased": OKABE_ITO["orange"],
    "retrieval": OKABE_ITO["green"],
    "retrieval_cosine": OKABE_ITO["black"],
    "mknn": OKABE_ITO["purple"],
}

MODEL_COLORS: tuple[str, ...] = tuple(
    OKABE_ITO[c] for c in ("blue", "vermillion", "green", "purple", "orange", "sky_blue", "black")
)
"""Model colours in order of appearance (Okabe-Ito without yellow, too light on white)."""
MODEL_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")

_RC = {"svg.hashsalt": "gapscope", "svg.fonttype": "none", "font.size": 9}


class NothingToPlot(ValueError):
    """The table has no rows for the requested figure (the message says which)."""


def _metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def save_figure(fig: Figure, out_stem: Path) -> list[Path]:
    """Write ``fig`` as ``<out_stem>.svg`` and ``<out_stem>.png``; return both paths."""
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_name(out_stem.name + ext) for ext in (".svg", ".png")]
    FigureCanvasAgg(fig)
    with mpl.rc_context(_RC):
        fig.savefig(paths[0], format="svg", metadata={"Date": None})
        fig.savefig(paths[1], format="png", dpi=150, metadata={"Software": None})
    return paths


def _range_text(values: pd.Series) -> str | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return None
    lo, hi = int(values.min()), int(values.max())
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _n_k_text(df: pd.DataFrame) -> str:
    parts = []
    n_text = _range_text(df["n"])
    if n_text is not None:
        parts.append(f"N={n_text} sentences")
    k_text = _range_text(pd.concat([df["k_a"], df["k_b"]], ignore_index=True))
    if k_text is not None:
        parts.append(f"k={k_text}")
    return ", ".join(parts)


def _layer_rows(similarity: pd.DataFrame, metric: str | None) -> pd.DataFrame:
    """Rows of layerNN ~ layerNN taps (one metric, or every metric for None)."""
    chosen = similarity["metric"] == metric if metric is not None else True
    df = similarity[
        chosen
        & similarity["comparison"].isin(COMPARISONS)
        & (similarity["tap_a"] == similarity["tap_b"])
    ].copy()
    df["layer"] = df["tap_a"].map(layer_index)
    df = df.dropna(subset=["layer"])
    df["layer"] = df["layer"].astype(int)
    return df


@mpl.rc_context(_RC)
def plot_layer_curves(
    similarity: pd.DataFrame,
    out_stem: Path,
    *,
    metric: str = "svcca",
    comparisons: Sequence[str] = COMPARISONS,
) -> list[Path]:
    """Mean score per layer for each comparison, one panel per model (shared y axis).

    Solid lines: mean over pairs with a +-1 sample-std band. Dashed lines of the same colour:
    mean ``null_mean`` over pairs with a light band of +- mean ``null_std`` (drawn only where
    nulls exist). Only ``layerNN`` taps and the given ``comparisons`` are plotted. The y
    axis is 0..1 unless a score lies outside. Raises :class:`NothingToPlot` (a ValueError)
    if nothing matches.
    """
    df = _layer_rows(similarity, metric)
    df = df[df["comparison"].isin(list(comparisons))]
    if df.empty:
        raise NothingToPlot(
            f"no layerNN rows for metric {metric!r} and comparisons {list(comparisons)} to plot"
        )
    models = list(dict.fromkeys(df["model"]))
    label = _metric_label(metric)
    # 0..1, widened only if scores leave it (debiased CKA can be negative)
    y_range = (min(0.0, float(df["score"].min())), max(1.0, float(df["score"].max())))
    width = max(6.0, 3.4 * len(models))
    fig = Figure(figsize=(width, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(models), sharey=True, squeeze=False)[0])
    for ax, model in zip(axes, models, strict=True):
        sub = df[df["model"] == model]
        for comp in comparisons:
            rows = sub[sub["comparison"] == comp]
            if rows.empty:
                continue
            style = COMPARISON_STYLE[comp]
            stats = rows.groupby("layer").agg(
                mean=("score", "mean"),
                std=("score", lambda s: s.std(ddof=1)),
                null=("null_mean", "mean"),
                null_std=("null_std", "mean"),
            )
            x = stats.index.to_numpy()
            mean, std = stats["mean"].to_numpy(), stats["std"].fillna(0).to_numpy()
            ax.plot(
                x, mean, color=style["color"], marker=style["marker"], ms=3.5, label=style["label"]
            )
            ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.2, lw=0)
            null = stats["null"].to_numpy(dtype=float)
            if np.isfinite(null).any():
                null_std = stats["null_std"].fillna(0).to_numpy(dtype=float)
                ax.plot(
                    x, null, color=style["color"], ls="--", lw=1, label=f"{style['label']} null"
                )
                ax.fill_between(
                    x, null - null_std, null + null_std, color=style["color"], alpha=0.08, lw=0
                )
        ax.set_title(f"{model} ({_n_k_text(sub)})", fontsize=9)
        ax.set_xlabel("layer")
        ax.set_ylim(y_range)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(True, color="#dddddd", lw=0.5)
    axes[0].set_ylabel(f"{label} (mean over pairs)")
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(
        handles, labels, loc="outside lower center", ncols=min(3, len(labels)), frameon=False
    )
    null_note = "; dashed: shuffled-pairing null" if df["null_mean"].notna().any() else ""
    what = label
    if list(comparisons) != list(COMPARISONS):
        what = " vs ".join(COMPARISON_STYLE[c]["label"] for c in comparisons) + f" {label}"
    fig.suptitle(
        f"{what} by layer\nmean ±1 std over pairs{null_note}\n({_n_k_text(df)})", fontsize=10
    )
    return save_figure(fig, out_stem)


def _cross_lingual_rows(
    similarity: pd.DataFrame, *, model: str, tap: str, modality: str, metric: str
) -> pd.DataFrame:
    comparison = f"cross_lingual_{modality}"
    df = similarity[
        (similarity["metric"] == metric)
        & (similarity["comparison"] == comparison)
        & (similarity["model"] == model)
        & (similarity["tap_a"] == tap)
    ]
    if df.empty:
        raise NothingToPlot(
            f"no {comparison} rows for model={model!r} tap={tap!r} metric={metric!r}"
        )
    return df


def language_matrix(
    similarity: pd.DataFrame,
    *,
    model: str,
    tap: str,
    modality: str,
    metric: str = "svcca",
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Symmetric language x language DataFrame of cross-lingual scores (diagonal 1).

    A pair scored in both directions gets the mean; unscored pairs are NaN. ``order`` fixes
    (and may restrict) the languages; default is sorted. Raises ValueError if no rows match.
    """
    df = _cross_lingual_rows(similarity, model=model, tap=tap, modality=modality, metric=metric)
    languages = list(order) if order is not None else sorted(set(df["lang_a"]) | set(df["lang_b"]))
    index = {lang: i for i, lang in enumerate(languages)}
    total = np.zeros((len(languages), len(languages)))
    count = np.zeros_like(total)
    for a, b, score in zip(df["lang_a"], df["lang_b"], df["score"], strict=True):
        if a in index and b in index and a != b and pd.notna(score):
            for i, j in ((index[a], index[b]), (index[b], index[a])):
                total[i, j] += score
                count[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = total / count
    np.fill_diagonal(matrix, 1.0)
    return pd.DataFrame(matrix, index=pd.Index(languages), columns=pd.Index(languages))


@mpl.rc_context(_RC)
def plot_language_heatmap(
    similarity: pd.DataFrame,
    out_stem: Path,
    *,
    model: str,
    tap: str,
    modality: str,
    metric: str = "svcca",
    order: Sequence[str] | None = None,
) -> list[Path]:
    """Language x language matrix of cross-lingual scores for one model, tap and modality.

    The matrix is filled symmetrically (mean if both directions exist), the diagonal is 1
    and missing pairs stay blank (see :func:`language_matrix`). Values are printed in the
    cells when there are at most 12 languages.
    """
    df = _cross_lingual_rows(similarity, model=model, tap=tap, modality=modality, metric=metric)
    table = language_matrix(
        similarity, model=model, tap=tap, modality=modality, metric=metric, order=order
    )
    languages = list(table.index)
    matrix = table.to_numpy(dtype=float)

    size = max(3.5, 0.45 * len(languages) + 2.0)
    fig = Figure(figsize=(size + 0.8, size), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(languages)), languages, rotation=90)
    ax.set_yticks(range(len(languages)), languages)
    if len(languages) <= 12:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if value > 0.6 else "white",
                )
    fig.colorbar(image, ax=ax, label=_metric_label(metric))
    ax.set_title(
        f"{model}, {tap}: cross-lingual {modality} {_metric_label(metric)}\n({_n_k_text(df)})",
        fontsize=9,
    )
    return save_figure(fig, out_stem)


def _model_style(index: int) -> dict[str, str]:
    return {
        "color": MODEL_COLORS[index % len(MODEL_COLORS)],
        "marker": MODEL_MARKERS[index % len(MODEL_MARKERS)],
    }


def _depth_scale(last_layers: dict[str, int]) -> tuple[dict[str, float], str]:
    """x-scaling per model: layers as is when every model has the same depth, else the
    relative depth layer / last layer (0 = embeddings, 1 = last layer)."""
    if len(set(last_layers.values())) <= 1:
        return {m: 1.0 for m in last_layers}, "layer"
    return (
        {m: 1.0 / max(last, 1) for m, last in last_layers.items()},
        "relative depth (layer / last layer)",
    )


def _legend_below(fig: Figure, axes: Sequence, ncols: int = 3) -> None:
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels and not lab.startswith("_"):
                handles.append(h)
                labels.append(lab)
    if labels:
        fig.legend(
            handles, labels, loc="outside lower center", ncols=min(ncols, len(labels)),
            frameon=False,
        )  # fmt: skip


@mpl.rc_context(_RC)
def placeholder_figure(out_stem: Path, message: str) -> list[Path]:
    """A figure that only says why there is nothing to plot (keeps workflow outputs total)."""
    fig = Figure(figsize=(6, 1.6), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    ax.text(0.5, 0.5, f"Nothing to plot:\n{message}", ha="center", va="center", wrap=True)
    return save_figure(fig, out_stem)


@mpl.rc_context(_RC)
def plot_model_comparison(
    similarity: pd.DataFrame,
    out_stem: Path,
    *,
    metric: str = "svcca",
    comparison: str = "cross_modal",
) -> list[Path]:
    """One comparison across models on shared axes: raw and calibrated, by depth.

    Left panel: mean score over pairs per layer (band: ±1 sample std over pairs), dashed:
    mean shuffled-pairing null. Right panel (only when nulls exist): mean over pairs of
    score - null with its ±1 std band and a zero line. Models with different depths are
    put on relative depth (layer / last layer). Raises :class:`NothingToPlot`.
    """
    df = _layer_rows(similarity, metric)
    df = df[df["comparison"] == comparison].copy()
    if df.empty:
        raise NothingToPlot(f"no layerNN {comparison} rows for metric {metric!r}")
    df["calibrated"] = df["score"].astype(float) - df["null_mean"].astype(float)
    models = list(dict.fromkeys(df["model"]))
    scale, xlabel = _depth_scale({m: int(df.loc[df["model"] == m, "layer"].max()) for m in models})
    has_null = bool(df["null_mean"].notna().any())
    label = _metric_label(metric)
    what = COMPARISON_STYLE.get(comparison, {"label": comparison})["label"]
    fig = Figure(figsize=(9.0 if has_null else 5.0, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, 2 if has_null else 1, squeeze=False)[0])
    for i, model in enumerate(models):
        sub = df[df["model"] == model]
        style = _model_style(i)
        stats = sub.groupby("layer").agg(
            mean=("score", "mean"),
            std=("score", lambda v: v.std(ddof=1)),
            null=("null_mean", "mean"),
            cal=("calibrated", "mean"),
            cal_std=("calibrated", lambda v: v.std(ddof=1)),
        )
        x = stats.index.to_numpy() * scale[model]
        name = f"{model} ({_n_k_text(sub)})"
        mean, std = stats["mean"].to_numpy(), stats["std"].fillna(0).to_numpy()
        ax = axes[0]
        ax.plot(x, mean, color=style["color"], marker=style["marker"], ms=3.5, label=name)
        ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.15, lw=0)
        if has_null:
            ax.plot(x, stats["null"], color=style["color"], ls="--", lw=1, label="_null")
            cal, cal_std = stats["cal"].to_numpy(), stats["cal_std"].fillna(0).to_numpy()
            axes[1].plot(x, cal, color=style["color"], marker=style["marker"], ms=3.5)
            axes[1].fill_between(
                x, cal - cal_std, cal + cal_std, color=style["color"], alpha=0.15, lw=0
            )
    axes[0].set_ylabel(f"{what} {label} (mean over pairs)")
    axes[0].set_title("raw score" + ("; dashed: shuffled-pairing null" if has_null else ""))
    if has_null:
        axes[1].axhline(0, color="#888888", lw=0.8)
        axes[1].set_ylabel(f"{what} {label} − null (mean over pairs)")
        axes[1].set_title("calibrated: score minus null")
    for ax in axes:
        ax.set_xlabel(xlabel)
        ax.grid(True, color="#dddddd", lw=0.5)
        if xlabel == "layer":
            ax.xaxis.get_major_locator().set_params(integer=True)
    _legend_below(fig, axes, ncols=2)
    fig.suptitle(f"{what} {label} by depth, all models (band: ±1 std over pairs)", fontsize=10)
    return save_figure(fig, out_stem)


def default_heatmap_taps(
    similarity: pd.DataFrame, *, model: str, metric: str = "svcca"
) -> list[str]:
    """First, middle and last ``layerNN`` tap with cross-lingual rows for ``model``.

    Layers present for both text and speech are preferred; with one modality only, its
    layers are used. Returns fewer taps when the model has fewer layers.
    """
    df = similarity[
        (similarity["model"] == model)
        & (similarity["metric"] == metric)
        & similarity["comparison"].isin(["cross_lingual_text", "cross_lingual_speech"])
    ]
    per_modality = [
        {t for t in df.loc[df["comparison"] == c, "tap_a"] if layer_index(t) is not None}
        for c in ("cross_lingual_text", "cross_lingual_speech")
    ]
    present = [taps for taps in per_modality if taps]
    if not present:
        return []
    layers = sorted(set.intersection(*present) or set.union(*present), key=layer_index)
    picks = [layers[0], layers[len(layers) // 2], layers[-1]]
    return list(dict.fromkeys(picks))


@mpl.rc_context(_RC)
def plot_language_heatmaps(
    similarity: pd.DataFrame,
    out_stem: Path,
    *,
    model: str,
    taps: Sequence[str] | None = None,
    metric: str = "svcca",
    order_by: str = "resource",
    modalities: Sequence[str] = ("text", "speech"),
) -> list[str | Path]:
    """Language x language cross-lingual matrices of one model: modalities x taps panels.

    Rows are modalities, columns taps (default :func:`default_heatmap_taps`: first, middle
    and last layer). Languages are ordered by resource group or family (``order_by``, see
    :func:`gapscope.gaps.language_order`), with white lines between groups and the group
    in the tick label. All panels share one colour scale; each panel title gives the mean
    shuffled-pairing null of its pairs. Panels without rows say so. Raises
    :class:`NothingToPlot` when no panel has data.
    """
    from gapscope.gaps import language_order

    taps = list(taps) if taps else default_heatmap_taps(similarity, model=model, metric=metric)
    df = similarity[
        (similarity["model"] == model)
        & (similarity["metric"] == metric)
        & similarity["comparison"].isin([f"cross_lingual_{m}" for m in modalities])
    ]
    if df.empty or not taps:
        raise NothingToPlot(f"no cross-lingual rows for model={model!r} metric={metric!r}")
    languages = language_order(sorted(set(df["lang_a"]) | set(df["lang_b"])), order_by)
    info = language_info(languages).set_index("language")
    key = "family" if order_by == "family" else "group"
    tick = [f"{c} · {info.at[c, key]}" if info.at[c, key] else c for c in languages]
    boundaries = [
        i for i in range(1, len(languages))
        if info.at[languages[i], key] != info.at[languages[i - 1], key]
    ]  # fmt: skip

    panels: dict[tuple[str, str], pd.DataFrame] = {}
    for modality in modalities:
        for tap in taps:
            try:
                panels[(modality, tap)] = language_matrix(
                    similarity, model=model, tap=tap, modality=modality, metric=metric,
                    order=languages,
                )  # fmt: skip
            except NothingToPlot:
                continue
    if not panels:
        raise NothingToPlot(f"no cross-lingual rows for model={model!r} at taps {taps}")
    off_diagonal = [m.to_numpy()[~np.eye(len(languages), dtype=bool)] for m in panels.values()]
    low = float(np.nanmin(np.concatenate(off_diagonal))) if off_diagonal else math.nan
    # shared scale from the lowest off-diagonal score (rounded down to 0.05) up to 1
    vmin = min(float(np.floor(low * 20) / 20), 0.9) if np.isfinite(low) else 0.0
    vmax = 1.0

    size = max(2.6, 0.28 * len(languages) + 1.6)
    n_rows, n_cols = len(modalities), len(taps)
    fig = Figure(figsize=(size * n_cols + 1.2, size * n_rows + 0.9), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for r, modality in enumerate(modalities):
        for c, tap in enumerate(taps):
            ax = axes[r][c]
            matrix = panels.get((modality, tap))
            if matrix is None:
                ax.axis("off")
                ax.text(0.5, 0.5, f"no {modality} pairs\nat {tap}", ha="center", va="center")
                continue
            values = matrix.to_numpy(dtype=float)
            image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=vmin, vmax=vmax)
            ax.set_xticks(range(len(languages)), tick if r == n_rows - 1 else [], rotation=90)
            ax.set_yticks(range(len(languages)), tick if c == 0 else [])
            for b in boundaries:
                ax.axhline(b - 0.5, color="white", lw=1.2)
                ax.axvline(b - 0.5, color="white", lw=1.2)
            if len(languages) <= 12:
                for (i, j), value in np.ndenumerate(values):
                    if np.isfinite(value) and i != j:
                        shade = (value - vmin) / max(vmax - vmin, 1e-9)
                        ax.text(
                            j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if shade > 0.6 else "white",
                        )  # fmt: skip
            rows = df[(df["comparison"] == f"cross_lingual_{modality}") & (df["tap_a"] == tap)]
            null = rows["null_mean"].astype(float)
            null_text = f", null {null.mean():.2f}" if null.notna().all() and len(null) else ""
            ax.set_title(f"{modality}, {tap}{null_text}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, label=f"cross-lingual {_metric_label(metric)}", shrink=0.8)
    fig.suptitle(
        f"{model}: cross-lingual {_metric_label(metric)} per language pair "
        f"(ordered by {'family' if order_by == 'family' else 'resource group'}; "
        f"{_n_k_text(df)})",
        fontsize=10,
    )
    return save_figure(fig, out_stem)


def _group_sequence(groups: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(groups))
    known = [g for g in GROUP_ORDER if g in present]
    other = sorted(g for g in present if g not in GROUP_ORDER and g != OVERALL)
    return [*known, *other]


@mpl.rc_context(_RC)
def plot_length_adaptation(
    per_language: pd.DataFrame, out_stem: Path, *, metric: str = "svcca"
) -> list[Path]:
    """Effect of length adaptation on the cross-modal score, by resource group and model.

    Input: the per-language table of :func:`gapscope.gaps.length_adaptation_effect`. Bars:
    mean over the group's languages of ``delta`` (after - before), error bars ±1 sample std
    over languages, dots: single languages; the last group ``all`` pools every language.
    A second panel shows the calibrated delta (score - null on both sides) when nulls
    exist. One bar colour per model. Raises :class:`NothingToPlot`.
    """
    df = per_language.dropna(subset=["delta"])
    if df.empty:
        raise NothingToPlot("no language has a cross-modal score both before and after")
    groups = [*_group_sequence(df["group"]), OVERALL]
    models = list(dict.fromkeys(df["model"]))
    values = ["delta"]
    if df["delta_calibrated"].notna().any():
        values.append("delta_calibrated")
    label = _metric_label(metric)
    width = 0.8 / len(models)
    fig = Figure(figsize=(max(5.0, 1.3 * len(groups) * len(values) + 2), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(values), squeeze=False)[0])
    rng = np.random.default_rng(0)
    for ax, value in zip(axes, values, strict=True):
        for i, model in enumerate(models):
            sub = df[df["model"] == model]
            style = _model_style(i)
            taps = f"{sub['before_tap'].iloc[0]} → {sub['after_tap'].iloc[0]}"
            for g, group in enumerate(groups):
                rows = sub if group == OVERALL else sub[sub["group"] == group]
                v = rows[value].dropna().to_numpy(dtype=float)
                if v.size == 0:
                    continue
                x = g - 0.4 + width * (i + 0.5)
                std = float(v.std(ddof=1)) if v.size > 1 else 0.0
                ax.bar(
                    x, float(v.mean()), width * 0.9, yerr=std, color=style["color"], alpha=0.75,
                    capsize=2, error_kw={"lw": 0.8},
                    label=f"{model} ({taps})" if g == 0 else "_",
                )  # fmt: skip
                jitter = (rng.random(v.size) - 0.5) * width * 0.5
                ax.plot(x + jitter, v, ls="none", marker=".", ms=3, color="black", alpha=0.7)
        counts = [
            df["language"].nunique()
            if group == OVERALL
            else df.loc[df["group"] == group, "language"].nunique()
            for group in groups
        ]
        ax.set_xticks(
            range(len(groups)), [f"{g}\n({n} lang.)" for g, n in zip(groups, counts, strict=True)]
        )
        ax.axhline(0, color="#888888", lw=0.8)
        ax.set_xlabel("resource group")
        ax.grid(True, axis="y", color="#dddddd", lw=0.5)
        if value == "delta":
            ax.set_ylabel(f"Δ cross-modal {label} (after − before)")
            ax.set_title("raw score")
        else:
            ax.set_ylabel(f"Δ cross-modal {label} − null (after − before)")
            ax.set_title("calibrated: score minus null")
    _legend_below(fig, axes, ncols=2)
    fig.suptitle(
        "Length adaptation: change of the cross-modal score (bar: mean over languages, "
        "±1 std; dots: languages)",
        fontsize=10,
    )
    return save_figure(fig, out_stem)


@mpl.rc_context(_RC)
def plot_modality_vs_language(
    per_language: pd.DataFrame, out_stem: Path, *, metric: str = "svcca"
) -> list[Path]:
    """Modality gap vs language gap per model.

    Input: :func:`gapscope.gaps.modality_vs_language`. Left: one dot per language and model
    at the model's last layer, x = cross-lingual text score (mean over the language's
    pairs), y = cross-modal score; below the diagonal the modality gap exceeds the language
    gap. Right: modality gap (cross-lingual text - cross-modal) by depth per model, mean
    over languages with a ±1 std band; dashed: the calibrated gap (score - null on both
    sides). Raises :class:`NothingToPlot`.
    """
    df = per_language.dropna(subset=["cross_modal", "cross_lingual_text"]).copy()
    df["layer"] = df["tap"].map(layer_index)
    if df.empty or df["layer"].isna().all():
        raise NothingToPlot("needs cross-modal and cross-lingual text scores at layerNN taps")
    layered = df.dropna(subset=["layer"]).copy()
    layered["layer"] = layered["layer"].astype(int)
    models = list(dict.fromkeys(layered["model"]))
    scale, xlabel = _depth_scale(
        {m: int(layered.loc[layered["model"] == m, "layer"].max()) for m in models}
    )
    label = _metric_label(metric)
    fig = Figure(figsize=(9.5, 4.2), layout="constrained")
    ax_scatter, ax_gap = fig.subplots(1, 2)
    lows, highs = [], []
    for i, model in enumerate(models):
        style = _model_style(i)
        sub = layered[layered["model"] == model]
        tap = last_layer(sub["tap"])
        last = sub[sub["tap"] == tap]
        ax_scatter.plot(
            last["cross_lingual_text"], last["cross_modal"], ls="none", marker=style["marker"],
            color=style["color"], ms=5, label=f"{model} ({tap}, N={_range_text(last['n'])})",
        )  # fmt: skip
        if len(last) <= 8:  # more labels overlap; the values are in the tables
            for x, y, lang in zip(
                last["cross_lingual_text"], last["cross_modal"], last["language"], strict=True
            ):
                ax_scatter.annotate(
                    lang, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points"
                )
        lows.append(min(last["cross_lingual_text"].min(), last["cross_modal"].min()))
        highs.append(max(last["cross_lingual_text"].max(), last["cross_modal"].max()))
        stats = sub.groupby("layer").agg(
            gap=("modality_gap", "mean"),
            std=("modality_gap", lambda v: v.std(ddof=1)),
            cal=("modality_gap_calibrated", "mean"),
        )
        x = stats.index.to_numpy() * scale[model]
        gap, std = stats["gap"].to_numpy(), stats["std"].fillna(0).to_numpy()
        ax_gap.plot(x, gap, color=style["color"], marker=style["marker"], ms=3.5)
        ax_gap.fill_between(x, gap - std, gap + std, color=style["color"], alpha=0.15, lw=0)
        if stats["cal"].notna().any():
            ax_gap.plot(x, stats["cal"], color=style["color"], ls="--", lw=1)
    lo, hi = float(np.nanmin(lows)), float(np.nanmax(highs))
    pad = max(0.02, 0.05 * (hi - lo))
    lims = (lo - pad, hi + pad)
    ax_scatter.plot(lims, lims, color="#888888", lw=0.8, ls=":", label="_diagonal")
    ax_scatter.set_xlim(lims)
    ax_scatter.set_ylim(lims)
    ax_scatter.set_aspect("equal", adjustable="box")
    ax_scatter.text(
        0.97, 0.03, "below diagonal:\nmodality gap > language gap", transform=ax_scatter.transAxes,
        ha="right", va="bottom", fontsize=7, color="#555555",
    )  # fmt: skip
    ax_scatter.set_xlabel(f"cross-lingual text {label}\n(mean over the language's pairs)")
    ax_scatter.set_ylabel(f"cross-modal {label} (text vs speech)")
    ax_scatter.set_title("per language, last layer\n(dotted: equal similarity)")
    ax_scatter.grid(True, color="#dddddd", lw=0.5)
    ax_gap.axhline(0, color="#888888", lw=0.8)
    ax_gap.set_xlabel(xlabel)
    if xlabel == "layer":
        ax_gap.xaxis.get_major_locator().set_params(integer=True)
    ax_gap.set_ylabel(f"modality gap ({label})\n= cross-lingual text − cross-modal")
    ax_gap.set_title("by depth: mean ±1 std over languages\ndashed: calibrated (score − null)")
    ax_gap.grid(True, color="#dddddd", lw=0.5)
    _legend_below(fig, [ax_scatter], ncols=2)
    fig.suptitle("Modality gap vs language gap (> 0: modality gap is larger)", fontsize=10)
    return save_figure(fig, out_stem)


@mpl.rc_context(_RC)
def plot_metrics_by_layer(similarity: pd.DataFrame, out_stem: Path) -> list[Path]:
    """Every metric of the run by layer, each beside its null: models x comparisons panels.

    One line per metric (mean over pairs), its shuffled-pairing null dashed in the same
    colour, so a reader sees at which layers SVCCA, CKA, retrieval and mutual k-NN agree
    and where they do not. Only ``layerNN`` tap pairs are drawn: retrieval is computed only
    where both views live in one space, so for models whose text and speech layers are
    different networks it has no cross-modal curve. Raises :class:`NothingToPlot` when no
    layer rows exist.
    """
    df = _layer_rows(similarity, None)
    if df.empty:
        raise NothingToPlot("no layerNN rows to plot")
    models = list(dict.fromkeys(df["model"]))
    metrics = [m for m in METRIC_LABELS if m in set(df["metric"])]
    metrics += sorted(set(df["metric"]) - set(metrics))
    y_range = (min(0.0, float(df["score"].min())), max(1.0, float(df["score"].max())))
    fig = Figure(figsize=(3.3 * len(COMPARISONS), 2.9 * len(models) + 0.8), layout="constrained")
    grid = fig.subplots(len(models), len(COMPARISONS), sharey=True, squeeze=False)
    for row, model in zip(grid, models, strict=True):
        for ax, comp in zip(row, COMPARISONS, strict=True):
            sub = df[(df["model"] == model) & (df["comparison"] == comp)]
            for metric in metrics:
                rows = sub[sub["metric"] == metric]
                if rows.empty:
                    continue
                stats = rows.groupby("layer").agg(
                    mean=("score", "mean"), null=("null_mean", "mean")
                )
                color = METRIC_COLORS.get(metric, OKABE_ITO["black"])
                x = stats.index.to_numpy()
                ax.plot(x, stats["mean"], color=color, marker="o", ms=2.5, lw=1.2,
                        label=_metric_label(metric))  # fmt: skip
                if stats["null"].notna().any():
                    ax.plot(x, stats["null"], color=color, ls="--", lw=0.9,
                            label=f"{_metric_label(metric)} null")  # fmt: skip
            if sub.empty:
                ax.text(0.5, 0.5, "no layer rows", ha="center", va="center",
                        transform=ax.transAxes, color="#777777")  # fmt: skip
            ax.set_title(f"{model}: {COMPARISON_STYLE[comp]['label']}", fontsize=9)
            ax.set_ylim(y_range)
            ax.set_xlabel("layer")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(True, color="#dddddd", lw=0.5)
        row[0].set_ylabel("score (mean over pairs)")
    _legend_below(fig, grid.ravel(), ncols=min(4, 2 * len(metrics)))
    fig.suptitle(
        "Every metric by layer (dashed: its shuffled-pairing null)\n"
        f"(N={_range_text(df['n'])} sentences)",
        fontsize=10,
    )
    return save_figure(fig, out_stem)
