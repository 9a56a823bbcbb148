"""Rule summarize_figures: layer curves, models compared, modality vs language gap, metrics."""

import logging
from pathlib import Path

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)
import pandas as pd

from gapscope import figures
from gapscope.stages import common

common.start_log(snakemake.log[0])
out = snakemake.output
metric = snakemake.params.metric
similarity = pd.read_parquet(snakemake.input.similarity)
per_language = pd.read_csv(snakemake.input.modality_vs_language)

plots = [
    (out.svg, lambda stem: figures.plot_layer_curves(similarity, stem, metric=metric)),
    (
        out.cross_lingual_svg,
        lambda stem: figures.plot_layer_curves(
            similarity,
            stem,
            metric=metric,
            comparisons=("cross_lingual_text", "cross_lingual_speech"),
        ),
    ),
    (out.models_svg, lambda stem: figures.plot_model_comparison(similarity, stem, metric=metric)),
    (
        out.gap_svg,
        lambda stem: figures.plot_modality_vs_language(per_language, stem, metric=metric),
    ),
    (out.metrics_svg, lambda stem: figures.plot_metrics_by_layer(similarity, stem)),
]
for svg, plot in plots:
    stem = Path(svg).with_suffix("")
    try:
        plot(stem)
    except figures.NothingToPlot as err:
        logging.warning("%s: %s", stem.name, err)
        figures.placeholder_figure(stem, str(err))
