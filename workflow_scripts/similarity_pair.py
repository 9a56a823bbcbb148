"""Rule similarity_pair: every comparison of two languages, every metric at every matching tap."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.stages import common, similarity

common.start_log(snakemake.log[0])
options = similarity.Options.from_config(snakemake.params.options)
device = similarity.compute_device(snakemake.config["similarity"])
rows = similarity.compare_files(
    snakemake.input.views,
    snakemake.params.comparisons,
    snakemake.input.stores,
    model=snakemake.wildcards.model,
    adapter=snakemake.params.adapter,
    options=options,
    device=device,
)
similarity.write_rows(rows, snakemake.output[0])
