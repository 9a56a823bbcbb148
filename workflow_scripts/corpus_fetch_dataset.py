"""Rule corpus_fetch_dataset: one language of a parquet speech dataset -> official layout."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.corpus import hf_dataset
from gapscope.stages import common, corpus

common.start_log(snakemake.log[0])
hf_dataset.export_language(
    corpus.dataset_spec(snakemake.params.options),
    snakemake.params.language,
    snakemake.wildcards.split,
    snakemake.output.table,
    snakemake.output.audio,
    cache_dir=snakemake.params.cache_dir,
)
