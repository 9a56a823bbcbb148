"""Corpus stage glue (rules/corpus.smk): where each source's FLEURS-layout folder lives,
which config keys change a manifest, and the corpus checks run before any job."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path

from gapscope import languages
from gapscope.corpus import fleurs, hf_dataset
from gapscope.errors import ConfigError

DEMO_CORPUS_ROOT = "resources/fleurs_demo"
FLEURS_HF_ROOT = "resources/fleurs_hf"
HF_DATASET_ROOT = "resources/hf_dataset"

SELECTION_KEYS = (
    "source",
    "path",
    "split",
    "text_field",
    "recording",
    "max_sentences",
    "sentence_ids",
    "on_bad_input",
    "max_clipped_fraction",
    "max_seconds",
)
"""The corpus settings that change a manifest (a change reruns the manifest job)."""


def manifest_params(corpus: Mapping) -> dict:
    """The part of ``config["corpus"]`` the manifest stage depends on."""
    return {key: corpus.get(key) for key in SELECTION_KEYS}


def manifest_arguments(params: Mapping, sentence_ids_path: str | None) -> dict:
    """Keyword arguments of :func:`gapscope.corpus.prepare_manifest` from the manifest rule's
    params (:func:`manifest_params`) and its sentence-id file input (None when not set)."""
    keys = ("text_field", "recording", "max_sentences", "on_bad_input", "max_clipped_fraction",
            "max_seconds")  # fmt: skip
    return {**{key: params[key] for key in keys}, "sentence_ids_path": sentence_ids_path}


def dataset_spec(section: Mapping) -> hf_dataset.DatasetSpec:
    """The :class:`~gapscope.corpus.hf_dataset.DatasetSpec` of the ``corpus.hf_dataset``
    section (validated: every key present); a missing key is a ConfigError naming it."""
    missing = [key for key in hf_dataset.SPEC_FIELDS if key not in section]
    if missing:
        raise ConfigError(f"corpus.hf_dataset: missing {', '.join(missing)}")
    return hf_dataset.DatasetSpec(**{key: section[key] for key in hf_dataset.SPEC_FIELDS})


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


def fleurs_codes(codes: Sequence[str]) -> dict[str, str]:
    """FLORES code -> FLEURS config name."""
    return {code: languages.get(code).fleurs for code in codes}


def check_config(config: Mapping) -> None:
    """The corpus checks the schema cannot express: the source's folder, tables and id file,
    the demo's languages and voices; ConfigError names the key."""
    corpus = config["corpus"]
    if corpus["source"] == "fleurs_local" and not corpus.get("path"):
        raise ConfigError("corpus.path: required when corpus.source is fleurs_local")
    if corpus["source"] == "demo":
        _check_demo_languages(config)
    _check_section(corpus, list(config["languages"]))


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


def _check_section(corpus: Mapping, codes: Sequence[str]) -> None:
    """Checks of ``config["corpus"]`` the schema cannot express; ConfigError names the key.

    Run at config validation, before any job: a missing local table, a missing id file or
    an incomplete ``hf_dataset`` section fails here rather than in the middle of a run.
    """
    source = corpus["source"]
    if source == "fleurs_local" and corpus.get("path"):
        root = Path(corpus["path"])
        if not root.is_dir():
            raise ConfigError(f"corpus.path: {root} is not a folder")
        split = corpus["split"]
        absent = [
            f"{code} ({fleurs.tsv_path(root, languages.get(code).fleurs, split)})"
            for code in codes
            if not fleurs.tsv_path(root, languages.get(code).fleurs, split).exists()
        ]
        if absent:
            raise ConfigError(
                f"corpus.path: no {split} table for {len(absent)} language(s) under {root}: "
                f"{', '.join(absent[:5])}"
            )
    if source == "hf_dataset":
        try:
            hf_dataset.check_spec(dataset_spec(corpus["hf_dataset"]), list(codes))
        except ValueError as err:
            raise ConfigError(str(err)) from err
        if importlib.util.find_spec("datasets") is None:
            raise ConfigError(
                "corpus.source: hf_dataset needs the `datasets` package "
                "(pip install 'gapscope[hf]')"
            )
    ids = corpus.get("sentence_ids")
    if ids and not Path(ids).is_file():
        raise ConfigError(f"corpus.sentence_ids: {ids} is not a file")
