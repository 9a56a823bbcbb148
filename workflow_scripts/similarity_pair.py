"""Rule similarity_pair: every metric at every matching tap of two views, with calibration."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import similarity
from gapscope.stages import common
from gapscope.stages import similarity as stage

common.start_log(snakemake.log[0])
options = stage.Options.from_config(snakemake.params.options)
device = similarity.resolve_device(snakemake.config["similarity"]["device"])
views = [
    stage.load_prepared(view, options, store=store, device=device)
    for view, store in zip(snakemake.input.views, snakemake.input.stores, strict=True)
]
rows = stage.compare_prepared(
    *views,
    model=snakemake.wildcards.model,
    adapter=snakemake.params.adapter,
    options=options,
    device=device,
)
stage.write_rows(rows, snakemake.output[0])
