"""Rule extract_activations: one model x language x modality -> one activation store."""

import json
import logging

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import corpus, extract, workflow

workflow.start_log(snakemake.log[0])
stats = extract.run_view(
    manifest=corpus.read_manifest(snakemake.input.manifest),
    model=snakemake.params.model,
    language=snakemake.wildcards.language,
    modality=snakemake.wildcards.modality,
    store=snakemake.output.store,
    budget=snakemake.params.budget,
    chunk_size=snakemake.params.chunk_size,
    device=snakemake.params.device,
    threads=snakemake.threads,
)
logging.info("done: %s", stats)
with open(snakemake.output.stats, "w") as handle:
    json.dump(stats, handle, indent=2)
