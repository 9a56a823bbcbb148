"""Rule similarity_table: concatenate the pair tables into the tidy similarity table."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.stages import common, similarity

common.start_log(snakemake.log[0])
table = similarity.read_tables(snakemake.input)
table.to_parquet(snakemake.output.parquet, index=False)
table.to_csv(snakemake.output.csv, index=False)
