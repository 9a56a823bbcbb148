"""Figures from the tidy similarity table.

Every plot function takes the similarity table and an output *stem* (a path without
extension), writes ``<stem>.svg`` and ``<stem>.png`` (parent folders are created) and
returns the written paths. Figures are drawn on a private Agg canvas, so importing this
module never changes the global matplotlib backend. Colours are Okabe-Ito (colour-blind
safe) and each comparison also has its own marker. SVG text stays text (editable,
searchable) and the SVG output is byte-stable across runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gapscope.gaps import COMPARISONS, layer_index

__all__ = [
    "COMPARISON_STYLE",
    "language_matrix",
    "METRIC_LABELS",
    "OKABE_ITO",
    "plot_language_heatmap",
    "plot_layer_curves",
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
}

_RC = {"svg.hashsalt": "gapscope", "svg.fonttype": "none", "font.size": 9}


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


def _layer_rows(similarity: pd.DataFrame, metric: str) -> pd.DataFrame:
    df = similarity[
        (similarity["metric"] == metric)
        & similarity["comparison"].isin(COMPARISONS)
        & (similarity["tap_a"] == similarity["tap_b"])
    ].copy()
    df["layer"] = df["tap_a"].map(layer_index)
    df = df.dropna(subset=["layer"])
    df["layer"] = df["layer"].astype(int)
    return df


@mpl.rc_context(_RC)
def plot_layer_curves(
    similarity: pd.DataFrame, out_stem: Path, *, metric: str = "svcca"
) -> list[Path]:
    """Mean score per layer for each comparison, one panel per model (shared y axis).

    Solid lines: mean over pairs with a +-1 sample-std band. Dashed lines of the same colour:
    mean ``null_mean`` over pairs with a light band of +- mean ``null_std`` (drawn only where
    nulls exist). Only ``layerNN`` taps are plotted. The y axis is 0..1 unless a score lies
    outside. Raises ValueError if nothing matches.
    """
    df = _layer_rows(similarity, metric)
    if df.empty:
        raise ValueError(f"no layerNN rows for metric {metric!r} to plot")
    models = list(dict.fromkeys(df["model"]))
    label = _metric_label(metric)
    # 0..1, widened only if scores leave it (debiased CKA can be negative)
    y_range = (min(0.0, float(df["score"].min())), max(1.0, float(df["score"].max())))
    width = max(6.0, 3.4 * len(models))
    fig = Figure(figsize=(width, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(models), sharey=True, squeeze=False)[0])
    for ax, model in zip(axes, models, strict=True):
        sub = df[df["model"] == model]
        for comp in COMPARISONS:
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
    fig.suptitle(
        f"{label} by layer, mean ±1 std over pairs{null_note}\n({_n_k_text(df)})", fontsize=10
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
        raise ValueError(f"no {comparison} rows for model={model!r} tap={tap!r} metric={metric!r}")
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
