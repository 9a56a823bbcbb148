# gapscope: modality and language gaps in multimodal foundation models.
#
# Path grammar (every output lives under results/, logs/ or resources/):
#   resources/fleurs_demo/{fleurs}/{split}.tsv, .../audio/{split}/   synthesised demo corpus
#   resources/models/{demo_model}/                                    tiny demo checkpoints
#   results/corpus/{language}/manifest.tsv                            normalised corpus
#   results/activations/{model}/{language}/{modality}.zarr            activation stores
#   results/similarity/{model}/views/{language}.{modality}.npz        prepared views (cache)
#   results/similarity/{model}/{lang_a}.{modality_a}~{lang_b}.{modality_b}.tsv
#   results/summary/similarity.{parquet,csv}, gaps.csv                tables
#   results/figures/                                                  figures

import sys

from snakemake.utils import min_version

min_version("9.0")

# The gapscope library lives beside this Snakefile (jobs find it through
# workflow_scripts/_bootstrap.py): no pip install is required to run the workflow.
sys.path.insert(0, workflow.basedir)


configfile: "config.yaml"


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/extract.smk"
include: "rules/similarity.smk"
include: "rules/summarize.smk"


rule all:
    default_target: True
    input:
        get_final_output(),


onsuccess:
    print_headline()
