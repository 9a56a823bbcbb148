"""Rule corpus_manifest: one language's FLEURS-layout split table -> checked manifest + report."""

import json
import logging

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import corpus
from gapscope.stages import common
from gapscope.stages import corpus as corpus_stage

common.start_log(snakemake.log[0])
ids_file = snakemake.input.get("sentence_ids")  # a path, or an empty list when not configured
manifest, report = corpus.prepare_manifest(
    snakemake.input.table,
    snakemake.input.audio,
    language=snakemake.wildcards.language,
    **corpus_stage.manifest_arguments(
        snakemake.params.corpus, ids_file if isinstance(ids_file, str) else None
    ),
)
corpus.write_manifest(manifest, snakemake.output.manifest)
with open(snakemake.output.report, "w") as handle:
    json.dump(report, handle, indent=2)
for key in ("missing_ids", "dropped_ids", "ids_without_recording", "skipped", "text_variants"):
    if report[key]:
        logging.warning(
            "%s: %d %s (see %s)", report["language"], len(report[key]), key, snakemake.output.report
        )
logging.info(
    "%s: %d sentence ids, %d recordings",
    report["language"],
    report["sentence_ids"],
    report["recordings_used"],
)
