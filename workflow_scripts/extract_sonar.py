"""Rule extract_activations_sonar: extract_activations for SONAR, under the SONAR interpreter.

A plain command-line wrapper of gapscope.stages.extract.run_view (the SONAR environment has no
Snakemake, so this script cannot use the ``snakemake`` object); the rule passes every value.
"""

import argparse
import json
import logging

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import corpus
from gapscope.stages import common, extract


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--model", required=True, help="model params as JSON")
    parser.add_argument("--language", required=True)
    parser.add_argument("--modality", required=True, choices=["text", "speech"])
    parser.add_argument("--store", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--budget", type=int, required=True)
    parser.add_argument("--chunk-size", type=int, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    common.start_log(args.log)
    stats = extract.run_view(
        manifest=corpus.read_manifest(args.manifest),
        model=json.loads(args.model),
        language=args.language,
        modality=args.modality,
        store=args.store,
        budget=args.budget,
        chunk_size=args.chunk_size,
        device=args.device,
        threads=args.threads,
    )
    logging.info("done: %s", stats)
    with open(args.stats, "w") as handle:
        json.dump(stats, handle, indent=2)


if __name__ == "__main__":
    main()
