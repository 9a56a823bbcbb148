"""Rule corpus_manifest: one language's FLEURS-layout split table -> normalised manifest."""

import json

from gapscope import corpus, workflow

workflow.start_log(snakemake.log[0])
manifest, report = corpus.prepare_manifest(
    snakemake.input.table,
    snakemake.input.audio,
    language=snakemake.wildcards.language,
    corpus=snakemake.params.corpus,
)
corpus.write_manifest(manifest, snakemake.output.manifest)
with open(snakemake.output.report, "w") as handle:
    json.dump(report, handle, indent=2)
