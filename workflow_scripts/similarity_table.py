"""Rule similarity_table: concatenate the pair tables into the tidy similarity table."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)
import pandas as pd

from gapscope import workflow

workflow.start_log(snakemake.log[0])
table = pd.concat([pd.read_parquet(path) for path in snakemake.input], ignore_index=True)
table.to_parquet(snakemake.output.parquet, index=False)
table.to_csv(snakemake.output.csv, index=False)
