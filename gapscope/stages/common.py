"""Glue of rules/common.smk: the checks run before any job (raising :class:`ConfigError`,
re-exported from :mod:`gapscope.errors`), the pairs to compare, the rule log. Pure
functions of the config, unit-tested without Snakemake."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

from gapscope import languages
from gapscope.errors import ConfigError
from gapscope.languages import ENGLISH

__all__ = ["ConfigError", "check_config", "model_languages", "plan_pairs", "start_log"]


def check_config(config: Mapping, basedir: str | Path | None = None) -> None:
    """Every check the schema cannot express, in one place, before any job runs: languages,
    corpus, models, comparisons, the summary metric and (given the workflow folder
    ``basedir``) the SONAR interpreter. Raises ConfigError naming the key."""
    for i, code in enumerate(config["languages"]):
        try:
            languages.get(code)
        except languages.UnknownLanguageError as err:
            raise ConfigError(f"languages[{i}]: {err}") from err
    # imported here: a rule script importing this module for start_log stays light (no pandas)
    from gapscope.stages import corpus, extract, summarize

    corpus.check_config(config)
    for name, model in config["models"].items():
        codes = model_languages(name, model, config["languages"])
        extract.check_model(name, model, codes, config["modalities"])
        english_centric = config["similarity"]["cross_lingual"] == "english_centric"
        if english_centric and model.get("languages") is not None and ENGLISH not in codes:
            raise ConfigError(
                f"models.{name}.languages: similarity.cross_lingual english_centric needs "
                f"{ENGLISH} in the model's languages"
            )
    if (
        config["similarity"]["cross_lingual"] == "english_centric"
        and ENGLISH not in config["languages"]
    ):
        raise ConfigError(f"similarity.cross_lingual: english_centric needs {ENGLISH} in languages")
    summarize.summary_metric(config)
    if basedir is not None:
        extract.check_sonar_python(config, basedir)


def model_languages(name: str, model: Mapping, codes: Sequence[str]) -> list[str]:
    """The languages one model runs on: its own ``languages`` subset, else all of them."""
    subset = model.get("languages")
    if subset is None:
        return list(codes)
    for i, code in enumerate(subset):
        if code not in codes:
            raise ConfigError(
                f"models.{name}.languages[{i}]: {code} is not in `languages` (a model's "
                "languages are a subset of the configured ones)"
            )
    return list(subset)


def plan_pairs(
    models: Sequence[str],
    codes: Sequence[str],
    modalities: Sequence[str],
    cross_lingual: str,
    model_configs: Mapping | None = None,
) -> list[tuple[str, str, str, str, str]]:
    """(model, lang_a, modality_a, lang_b, modality_b) for every comparison.

    Cross-modal: text vs speech of each language. Cross-lingual: each unordered language pair
    per modality (``all``), or English against every other language (``english_centric``).
    Languages inside a pair are ordered alphabetically so a pair's file never depends on
    the order of the config list (adding a language only adds pairs).
    """
    pairs = []
    for model in models:
        spec = (model_configs or {}).get(model) or {}
        langs = sorted(spec.get("languages") or codes)
        if "text" in modalities and "speech" in modalities:
            pairs += [(model, lang, "text", lang, "speech") for lang in langs]
        if cross_lingual == "none":
            continue
        for modality in modalities:
            for a, b in itertools.combinations(langs, 2):
                if cross_lingual == "english_centric" and ENGLISH not in (a, b):
                    continue
                pairs.append((model, a, modality, b, modality))
    return pairs


def start_log(path: str | Path) -> None:
    """Send stderr and the logging module to a rule's log file (first line of every script)."""
    import logging
    import sys

    sys.stderr = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives as long as the job)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
