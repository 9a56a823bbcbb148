"""Rule summarize_figures: layer-wise similarity curves with null bands."""

from pathlib import Path

import pandas as pd

from gapscope import figures, workflow

workflow.start_log(snakemake.log[0])
stem = Path(snakemake.output.svg).with_suffix("")
figures.plot_layer_curves(
    pd.read_parquet(snakemake.input[0]), stem, metric=snakemake.params.metric
)
