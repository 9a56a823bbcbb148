"""Rule similarity_view: prepare every tap of one language's stores for the pairs they meet."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.stages import common, similarity

common.start_log(snakemake.log[0])
options = similarity.Options.from_config(snakemake.config["similarity"])
device = similarity.compute_device(snakemake.config["similarity"])
prepared = [similarity.prepare_store(store, options, device) for store in snakemake.input.stores]
similarity.save_prepared(prepared, snakemake.output[0])
