"""Rule similarity_pair: every metric at every matching tap of two views, with calibration."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import similarity, workflow

workflow.start_log(snakemake.log[0])
table = similarity.compare_stores(
    snakemake.input.a,
    snakemake.input.b,
    model=snakemake.wildcards.model,
    adapter=snakemake.params.adapter,
    options=snakemake.params.options,
)
table.to_parquet(snakemake.output[0], index=False)
