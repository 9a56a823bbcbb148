"""Rule summarize_gaps: modality gap and language gap per model and tap."""

import pandas as pd

from gapscope import gaps, workflow

workflow.start_log(snakemake.log[0])
table = gaps.gap_table(pd.read_parquet(snakemake.input[0]), metric=snakemake.params.metric)
table.to_csv(snakemake.output[0], index=False, float_format="%.6g")
