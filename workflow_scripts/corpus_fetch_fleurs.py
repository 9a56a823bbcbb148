"""Rule corpus_fetch_fleurs: one FLEURS split from the hub files into the official layout."""

import json
import logging

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.corpus import hub
from gapscope.stages import common

common.start_log(snakemake.log[0])
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
