"""Rule corpus_fetch_fleurs: one FLEURS split from the hub files into the official layout."""

import json
import logging

from gapscope import workflow
from gapscope.corpus import hub

workflow.start_log(snakemake.log[0])
info = hub.fetch_split(
    snakemake.wildcards.fleurs,
    snakemake.wildcards.split,
    snakemake.output.table,
    snakemake.output.audio,
    repo=snakemake.params.repo,
    revision=snakemake.params.revision,
    cache_dir=snakemake.params.cache_dir,
)
logging.info("provenance: %s", json.dumps(info))
