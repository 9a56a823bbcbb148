"""Rule similarity_pair: every metric at every matching tap of two views, with calibration."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.stages import common, similarity

common.start_log(snakemake.log[0])
options = similarity.Options.from_config(snakemake.params.options)
device = similarity.compute_device(snakemake.config["similarity"])
views = [
    similarity.load_prepared(view, options, store=store, device=device)
    for view, store in zip(snakemake.input.views, snakemake.input.stores, strict=True)
]
rows = similarity.compare_prepared(
    *views,
    model=snakemake.wildcards.model,
    adapter=snakemake.params.adapter,
    options=options,
    device=device,
)
similarity.write_rows(rows, snakemake.output[0])
