"""Rule similarity_view: prepare every tap of one activation store for the pairs it meets."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import similarity
from gapscope.stages import common
from gapscope.stages import similarity as stage

common.start_log(snakemake.log[0])
options = stage.Options.from_config(snakemake.config["similarity"])
device = similarity.resolve_device(snakemake.config["similarity"]["device"])
prepared = stage.prepare_store(snakemake.input.store, options, device)
stage.save_prepared(prepared, snakemake.output[0])
