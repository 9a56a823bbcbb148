"""Rule extract_activations: one model x language x modality -> one activation store."""

import json
import logging

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import corpus
from gapscope.stages import common, extract

common.start_log(snakemake.log[0])
settings = snakemake.config["extract"]
stats = extract.run_view(
    manifest=corpus.read_manifest(snakemake.input.manifest),
    model=snakemake.params.model,
    language=snakemake.wildcards.language,
    modality=snakemake.wildcards.modality,
    store=snakemake.output.store,
    budget=extract.extract_budget(settings, snakemake.wildcards.modality),
    chunk_size=settings["chunk_size"],
    device=settings["device"],
    threads=snakemake.threads,
)
logging.info("done: %s", stats)
with open(snakemake.output.stats, "w") as handle:
    json.dump(stats, handle, indent=2)
