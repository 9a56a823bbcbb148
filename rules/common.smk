"""Config validation, wildcard constraints, input functions and the final target list."""

import json
from pathlib import Path

from snakemake.utils import validate

from gapscope.models.demo import DEMO_MODELS
from gapscope.stages import common, corpus, extract, similarity, summarize

validate(config, schema="schemas/config.schema.yaml")
common.check_config(config, workflow.basedir)

LANGUAGES = list(config["languages"])
MODALITIES = list(config["modalities"])
MODELS = list(config["models"])
# SONAR models run under their own interpreter (rule extract_activations_sonar).
SONAR_MODELS = extract.sonar_models(config)
OTHER_MODELS = [m for m in MODELS if m not in SONAR_MODELS]
FLEURS = corpus.fleurs_codes(LANGUAGES)


wildcard_constraints:
    language="|".join(LANGUAGES),
    lang_a="|".join(LANGUAGES),
    lang_b="|".join(LANGUAGES),
    modality="text|speech",
    modality_a="text|speech",
    modality_b="text|speech",
    model="|".join(MODELS),
    fleurs="|".join(FLEURS.values()),
    split="train|dev|test",
    demo_model="|".join(DEMO_MODELS),


def store_path(model, language, modality):
    """Path of one activation store."""
    return f"results/activations/{model}/{language}/{modality}.zarr"


def view_path(model, language, modality):
    """Path of one prepared view (the similarity stage's per-view cache)."""
    return f"results/similarity/{model}/views/{language}.{modality}.npz"


def pair_path(model, lang_a, lang_b):
    """Path of the similarity table of one language pair (a language with itself: its
    cross-modal comparison)."""
    return f"results/similarity/{model}/{lang_a}~{lang_b}.tsv"


def get_pairs():
    """Every (model, lang_a, modality_a, lang_b, modality_b) compared under this config."""
    return common.plan_pairs(
        MODELS, LANGUAGES, MODALITIES, config["similarity"]["cross_lingual"], config["models"]
    )


def get_pair_tables(wildcards):
    """All language-pair tables that make up the similarity table."""
    return list(dict.fromkeys(pair_path(m, la, lb) for m, la, _, lb, _ in get_pairs()))


def get_corpus_table(wildcards):
    """The FLEURS-layout split table of one language (synthesised, local or from the hub)."""
    fleurs = FLEURS[wildcards.language]
    return str(Path(corpus.corpus_root(config)) / fleurs / f"{config['corpus']['split']}.tsv")


def get_corpus_audio(wildcards):
    """The folder with one language's split audio (generated, fetched or local)."""
    fleurs = FLEURS[wildcards.language]
    split = config["corpus"]["split"]
    return str(Path(corpus.corpus_root(config)) / fleurs / "audio" / split)


def get_fleurs_language(wildcards):
    """The FLORES code of a FLEURS config name."""
    return {fleurs: code for code, fleurs in FLEURS.items()}[wildcards.fleurs]


def get_sentence_ids_file(wildcards):
    """The file fixing the sentence ids of every language (corpus.sentence_ids), if any."""
    path = config["corpus"].get("sentence_ids")
    return path if path else []


def get_model_dir(wildcards):
    """The model folder when the workflow builds it (demo models), else nothing."""
    path = config["models"][wildcards.model]["checkpoint"]
    return [path] if extract.is_demo_checkpoint(path) else []


def get_model_params(wildcards):
    """Everything about a model that changes its activations (a change reruns extraction)."""
    return extract.model_params(config, wildcards.model)


def get_model_params_json(wildcards):
    """The model's params as one JSON string (for the SONAR command line)."""
    return json.dumps(get_model_params(wildcards))


def get_extract_budget(wildcards):
    """Padded batch budget: tokens for text, samples for speech."""
    return extract.extract_budget(config["extract"], wildcards.modality)


def get_adapter(wildcards):
    """The adapter family of a model (decides how its taps pair across modalities)."""
    return config["models"][wildcards.model]["adapter"]


def get_pair_inputs(wildcards):
    """The prepared views of every comparison planned between two languages, two by two (for
    each comparison, lang_a's view then lang_b's), and their stores (read only to align ids
    that differ between two views, or to bootstrap)."""
    views = []
    for model, lang_a, modality_a, lang_b, modality_b in get_pairs():
        if (model, lang_a, lang_b) == (wildcards.model, wildcards.lang_a, wildcards.lang_b):
            views += [(lang_a, modality_a), (lang_b, modality_b)]
    if not views:
        raise ValueError(
            f"{pair_path(wildcards.model, wildcards.lang_a, wildcards.lang_b)}: no comparison "
            "of these languages is planned (languages in alphabetical order; cross-modal "
            "needs both modalities; see similarity.cross_lingual)"
        )
    return {
        "views": [view_path(wildcards.model, *view) for view in views],
        "stores": [store_path(wildcards.model, *view) for view in views],
    }


def get_view_options(wildcards):
    """The similarity options a prepared view depends on (a change reruns the views)."""
    return similarity.view_options(config["similarity"])


def get_pair_options(wildcards):
    """The similarity options that change a pair's numbers (not the device)."""
    return {key: value for key, value in config["similarity"].items() if key != "device"}


def get_summary_outputs():
    """Every output of the summarize rules (tables, report pages, figures), per model where
    an output names one: read from the rules themselves (rules/summarize.smk), never restated."""
    outputs = []
    for name in sorted(step.name for step in workflow.rules):
        if name.startswith("summarize_"):
            outputs += expand(list(getattr(rules, name).output), model=MODELS)
    return outputs


def get_final_output():
    """The final targets of the workflow."""
    return [
        "results/summary/similarity.parquet",
        "results/corpus/coverage.tsv",
        *get_summary_outputs(),
    ]


def print_headline():
    """Print the headline gap table after a successful run."""
    summarize.print_headline("results/summary/gaps.csv")
