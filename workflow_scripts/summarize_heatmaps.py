"""Rule summarize_heatmaps: language x language matrices of one model at chosen taps."""

import logging
from pathlib import Path

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)
import pandas as pd

from gapscope import figures
from gapscope.stages import common

common.start_log(snakemake.log[0])
stem = Path(snakemake.output.svg).with_suffix("")
try:
    figures.plot_language_heatmaps(
        pd.read_parquet(snakemake.input.similarity),
        stem,
        model=snakemake.wildcards.model,
        taps=snakemake.params.taps,
        metric=snakemake.params.metric,
        order_by=snakemake.params.order,
    )
except figures.NothingToPlot as err:
    logging.warning("heatmaps: %s", err)
    figures.placeholder_figure(stem, str(err))
