"""Rule extract_demo_model: a tiny random-init SeamlessM4T checkpoint with its processor."""

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope.models import demo
from gapscope.stages import common

common.start_log(snakemake.log[0])
demo.build_demo_model(snakemake.wildcards.demo_model, snakemake.output[0])
