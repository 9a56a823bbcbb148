"""Config validation, wildcard constraints, input functions and the final target list."""

import json
from functools import cache
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


def view_path(model, language):
    """Path of the prepared views of one language (the similarity stage's per-view cache:
    each modality a comparison needs)."""
    return f"results/similarity/{model}/views/{language}.npz"


def pair_path(model, lang_a, lang_b):
    """Path of the similarity table of one language pair (a language with itself: its
    cross-modal comparison)."""
    return f"results/similarity/{model}/{lang_a}~{lang_b}.tsv"


@cache
def get_pairs():
    """Every (model, lang_a, modality_a, lang_b, modality_b) compared under this config."""
    return common.plan_pairs(
        MODELS, LANGUAGES, MODALITIES, config["similarity"]["cross_lingual"], config["models"]
    )


@cache
def get_planned_views():
    """(model, lang_a, lang_b) -> its comparisons' (modality_a, modality_b) in plan order, and
    (model, language) -> the modalities compared (planned once: input functions run per job)."""
    comparisons, views = {}, {}
    for model, lang_a, modality_a, lang_b, modality_b in get_pairs():
        comparisons.setdefault((model, lang_a, lang_b), []).append([modality_a, modality_b])
        views.setdefault((model, lang_a), set()).add(modality_a)
        views.setdefault((model, lang_b), set()).add(modality_b)
    return comparisons, views


def get_pair_tables(wildcards):
    """All language-pair tables that make up the similarity table, in plan order."""
    comparisons, _ = get_planned_views()
    return [pair_path(*languages) for languages in comparisons]


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


def get_comparisons(wildcards):
    """The (modality_a, modality_b) of every comparison planned between two languages."""
    comparisons, _ = get_planned_views()
    return comparisons.get((wildcards.model, wildcards.lang_a, wildcards.lang_b), [])


def get_view_stores(wildcards):
    """The stores of one language whose views some comparison needs, in config order."""
    _, views = get_planned_views()
    needed = views.get((wildcards.model, wildcards.language), set())
    return [
        store_path(wildcards.model, wildcards.language, modality)
        for modality in MODALITIES
        if modality in needed
    ]


def get_pair_inputs(wildcards):
    """The prepared views of the two languages, and for every comparison between them
    (get_comparisons) its two stores, lang_a's then lang_b's (read only to align ids that
    differ between two views, or to bootstrap)."""
    comparisons = get_comparisons(wildcards)
    if not comparisons:
        raise ValueError(
            f"{pair_path(wildcards.model, wildcards.lang_a, wildcards.lang_b)}: no comparison "
            "of these languages is planned (languages in alphabetical order; cross-modal "
            "needs both modalities; see similarity.cross_lingual)"
        )
    langs = (wildcards.lang_a, wildcards.lang_b)
    return {
        "views": [view_path(wildcards.model, lang) for lang in langs],
        "stores": [
            store_path(wildcards.model, lang, modality)
            for pair in comparisons
            for lang, modality in zip(langs, pair, strict=True)
        ],
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
