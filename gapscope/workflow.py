"""Workflow helpers used by rules/common.smk: config checks, pair planning, params.

Pure functions of the config, so they are unit-tested without Snakemake.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

from gapscope import languages

DEMO_MODELS = {"seamless_m4t_v2_tiny": 2, "seamless_m4t_tiny": 1}
DEMO_CORPUS_ROOT = "resources/fleurs_demo"
FLEURS_HF_ROOT = "resources/fleurs_hf"
HF_DATASET_ROOT = "resources/hf_dataset"
DEMO_MODEL_ROOT = "resources/models"
ENGLISH = "eng_Latn"


class ConfigError(ValueError):
    """A config value is wrong; the message names the key."""


def check_config(config: Mapping) -> None:
    """Cross-field checks the schema cannot express; raise ConfigError naming the key."""
    for i, code in enumerate(config["languages"]):
        try:
            languages.get(code)
        except languages.UnknownLanguageError as err:
            raise ConfigError(f"languages[{i}]: {err}") from err
    corpus = config["corpus"]
    if corpus["source"] == "fleurs_local" and not corpus.get("path"):
        raise ConfigError("corpus.path: required when corpus.source is fleurs_local")
    if corpus["source"] == "demo":
        _check_demo_languages(config)
    from gapscope import corpus as corpus_stage

    try:
        corpus_stage.check_config(corpus, list(config["languages"]))
    except ValueError as err:
        raise ConfigError(str(err)) from err
    for name, model in config["models"].items():
        codes = model_languages(name, model, config["languages"])
        _check_model(name, model, codes, config["modalities"])
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
        raise ConfigError("similarity.cross_lingual: english_centric needs eng_Latn in languages")


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


def _check_model(
    name: str, model: Mapping, codes: Sequence[str], modalities: Sequence[str]
) -> None:
    """The adapter has a loader and supports every configured language and modality."""
    from gapscope.models import FAMILIES, LOADERS

    if model["adapter"] not in LOADERS:
        raise ConfigError(
            f"models.{name}.adapter: {model['adapter']!r} has no loader yet "
            f"(available: {', '.join(sorted(LOADERS))})"
        )
    family = FAMILIES[model["adapter"]]
    for modality in modalities:
        unsupported = [code for code in codes if not family.supports(code, modality)]
        if unsupported:
            raise ConfigError(
                f"models.{name}: {model['adapter']} has no {modality} support for "
                f"{', '.join(unsupported)}; remove them from `languages`, or list the "
                f"supported ones in models.{name}.languages"
            )


def _check_demo_languages(config: Mapping) -> None:
    from gapscope.corpus import demo

    have = demo.available_languages()
    for code in config["languages"]:
        if code not in have:
            raise ConfigError(
                f"languages: {code} is not in the demo corpus (corpus.source: demo), which has "
                f"{', '.join(have)}"
            )
        if "speech" in config["modalities"] and languages.get(code).espeak is None:
            raise ConfigError(
                f"languages: {code} ({languages.get(code).name}) has no espeak-ng voice, so the "
                "demo cannot synthesise its speech"
            )


def fleurs_codes(codes: Sequence[str]) -> dict[str, str]:
    """FLORES code -> FLEURS config name."""
    return {code: languages.get(code).fleurs for code in codes}


def corpus_root(config: Mapping) -> str:
    """Root of the FLEURS-layout folder the manifests are read from."""
    corpus = config["corpus"]
    if corpus["source"] == "demo":
        return DEMO_CORPUS_ROOT
    if corpus["source"] == "fleurs_hf":
        return FLEURS_HF_ROOT
    if corpus["source"] == "hf_dataset":
        return HF_DATASET_ROOT
    return str(corpus["path"])


def is_demo_checkpoint(checkpoint: str) -> bool:
    """True when the checkpoint is a tiny model this workflow builds itself."""
    path = Path(checkpoint)
    return path.parent == Path(DEMO_MODEL_ROOT) and path.name in DEMO_MODELS


def model_params(config: Mapping, model: str) -> dict:
    """The settings that determine a model's activations (rerun extraction when they change).

    ``dtype: null`` is the family's official inference precision (``Family.dtype``).
    """
    from gapscope.models import family

    spec = config["models"][model]
    corpus = config["corpus"]
    return {
        "name": model,
        "adapter": spec["adapter"],
        "checkpoint": spec["checkpoint"],
        "revision": spec.get("revision"),
        "init": spec.get("init", "pretrained"),
        "dtype": spec.get("dtype") or family(spec["adapter"]).dtype,
        "seed": spec.get("seed", 0),
        "trust_remote_code": spec.get("trust_remote_code", False),
        "options": dict(spec.get("options") or {}),
        "pooling": "masked_mean",
        "recording": str(corpus["recording"]),
    }


def extract_budget(extract: Mapping, modality: str) -> int:
    """Padded batch size: tokens for text, 16 kHz samples for speech."""
    if modality == "text":
        return int(extract["batch_tokens"])
    return int(extract["batch_seconds"] * 16_000)


SONAR_ADAPTER = "sonar"
DEFAULT_SONAR_PYTHON = ".venv-sonar/bin/python"


def sonar_models(config: Mapping) -> list[str]:
    """Models extracted in the SONAR environment (adapter ``sonar``), in config order."""
    return [name for name, m in config["models"].items() if m["adapter"] == SONAR_ADAPTER]


def models_regex(names: Sequence[str]) -> str:
    """A {model} wildcard regex matching exactly ``names`` (never matching when empty)."""
    return "|".join(names) or "(?!)"


def sonar_python(config: Mapping, basedir: str | Path) -> str:
    """The SONAR interpreter (``extract.sonar_python``).

    A path is relative to the workflow folder; a bare command name (``python``, e.g. inside
    the rule's conda environment under ``--sdm conda``) is looked up on PATH when the job runs.
    """
    value = str(config["extract"].get("sonar_python") or DEFAULT_SONAR_PYTHON)
    if "/" not in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else Path(basedir) / path)


def check_sonar_python(config: Mapping, basedir: str | Path) -> None:
    """With a SONAR model configured, the SONAR interpreter must exist (before any job runs)."""
    models = sonar_models(config)
    python = sonar_python(config, basedir)
    if models and "/" in python and not Path(python).exists():
        raise ConfigError(
            f"extract.sonar_python: {python} does not exist, but models {', '.join(models)} "
            "run in the SONAR environment; build it with `bash envs/install_sonar.sh` "
            "(or point extract.sonar_python at an existing one)"
        )


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


def print_headline(gaps_csv: str | Path) -> None:
    """Print the headline table of a gaps CSV (no-op when it does not exist)."""
    path = Path(gaps_csv)
    if not path.exists():
        return
    import pandas as pd

    from gapscope.gaps import format_headline

    print(format_headline(pd.read_csv(path)))


def start_log(path: str | Path) -> None:
    """Send stderr and the logging module to a rule's log file (first line of every script)."""
    import logging
    import sys

    sys.stderr = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 (lives as long as the job)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
