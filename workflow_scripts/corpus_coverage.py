"""Rule corpus_coverage: which sentence ids each language holds (id x language table)."""

import json
import logging

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import corpus
from gapscope.corpus import coverage
from gapscope.stages import common

common.start_log(snakemake.log[0])
languages = list(snakemake.params.languages)
manifests = {
    lang: corpus.read_manifest(path)
    for lang, path in zip(languages, snakemake.input.manifests, strict=True)
}
ids_file = snakemake.input.get("sentence_ids")  # a path, or an empty list when not configured
requested = corpus.read_sentence_ids(ids_file) if isinstance(ids_file, str) else None
table = coverage.coverage_table(manifests, requested)
table.to_csv(snakemake.output.table, sep="\t", index=False)
summary = coverage.coverage_summary(table, languages)
with open(snakemake.output.summary, "w") as handle:
    json.dump(summary, handle, indent=2)
with open(snakemake.output.common_ids, "w") as handle:
    handle.write("".join(f"{i}\n" for i in summary["common_ids"]))
logging.info(
    "%d ids in some language, %d in all %d languages",
    summary["ids_in_any_language"],
    summary["ids_in_every_language"],
    len(languages),
)
