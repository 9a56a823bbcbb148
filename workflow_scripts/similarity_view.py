"""Rule similarity_view: prepare every tap of one activation store for the pairs it meets."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.stages import common, similarity

common.start_log(snakemake.log[0])
options = similarity.Options.from_config(snakemake.config["similarity"])
device = similarity.compute_device(snakemake.config["similarity"])
prepared = similarity.prepare_store(snakemake.input.store, options, device)
similarity.save_prepared(prepared, snakemake.output[0])
