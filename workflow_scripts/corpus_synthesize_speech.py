"""Rule corpus_synthesize_speech: espeak-ng speech for one demo language, FLEURS layout."""

from pathlib import Path

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.corpus import demo
from gapscope.stages import common

common.start_log(snakemake.log[0])
root = Path(snakemake.output.table).parent.parent
demo.synthesize_split(snakemake.params.language, str(root), snakemake.wildcards.split)
