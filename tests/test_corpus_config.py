"""Corpus and model-language config checks, per-model language subsets, the paper config."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from gapscope import languages
from gapscope.stages import common
from gapscope.stages import corpus as corpus_stage
from gapscope.stages import extract as extract_stage

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "rules/schemas/config.schema.yaml")


def load(path: str) -> dict:
    with open(REPO / path) as handle:
        cfg = yaml.safe_load(handle)
    validate(cfg, SCHEMA)  # fills the defaults, as the workflow does
    return cfg


@pytest.fixture
def config():
    return load("config.yaml")


def with_corpus(cfg: dict, **changes) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["corpus"].update(changes)
    return cfg


def test_hub_sources_pass_and_have_their_roots(config):
    hub = with_corpus(config, source="fleurs_hf")
    common.check_config(hub)
    assert corpus_stage.corpus_root(hub) == corpus_stage.FLEURS_HF_ROOT
    ds = with_corpus(
        config, source="hf_dataset", hf_dataset={**config["corpus"]["hf_dataset"], "path": "x/y"}
    )
    ds["corpus"]["hf_dataset"]["config_name"] = "{code}"
    common.check_config(ds)
    assert corpus_stage.corpus_root(ds) == corpus_stage.HF_DATASET_ROOT


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ({}, r"corpus.hf_dataset.path: required"),
        ({"path": "a/b"}, r"corpus.hf_dataset: set config_name .* and/or language_column"),
        ({"path": "a/b", "config_name": "all"}, r"corpus.hf_dataset.config_name: 'all' names one"),
        (
            {"path": "a/b", "language_column": "lang", "language_code": "seamless"},
            None,
        ),
        (
            {"path": "a/b", "language_column": "lang", "language_code": "sonar_speech"},
            r"corpus.hf_dataset.language_code: amh_Ethi has no sonar_speech code",
        ),
    ],
)
def test_hf_dataset_errors_name_the_key(config, dataset, message):
    cfg = with_corpus(config, source="hf_dataset")
    cfg["corpus"]["hf_dataset"].update(dataset)
    if message is None:
        common.check_config(cfg)
        return
    with pytest.raises(common.ConfigError, match=message):
        common.check_config(cfg)


def test_local_source_checks_every_table_before_running(config, tmp_path):
    (tmp_path / "en_us").mkdir()
    (tmp_path / "en_us" / "test.tsv").write_text("1\ta.wav\tA\ta\t\t1\tMALE\n")
    cfg = with_corpus(config, source="fleurs_local", path=str(tmp_path))
    cfg["languages"] = ["eng_Latn", "deu_Latn"]
    with pytest.raises(common.ConfigError, match=r"corpus.path: no test table .*deu_Latn .*de_de"):
        common.check_config(cfg)
    cfg["corpus"]["path"] = str(tmp_path / "nowhere")
    with pytest.raises(common.ConfigError, match="corpus.path: .*nowhere is not a folder"):
        common.check_config(cfg)


def test_sentence_ids_must_be_a_file(config, tmp_path):
    with pytest.raises(common.ConfigError, match="corpus.sentence_ids: .*ids.txt is not a file"):
        common.check_config(with_corpus(config, sentence_ids=str(tmp_path / "ids.txt")))
    (tmp_path / "ids.txt").write_text("1\n2\n3\n")
    common.check_config(with_corpus(config, sentence_ids=str(tmp_path / "ids.txt")))


def test_unknown_language_suggests_close_codes(config):
    cfg = copy.deepcopy(config)
    cfg["languages"][3] = "amh_ethi"
    with pytest.raises(common.ConfigError, match=r"languages\[3\]: unknown language .*amh_Ethi"):
        common.check_config(cfg)
    with pytest.raises(languages.UnknownLanguageError, match="did you mean swh_Latn"):
        languages.get("swahili")


def test_manifest_params_are_only_the_selection_keys(config):
    params = corpus_stage.manifest_params(config["corpus"])
    assert set(params) == set(corpus_stage.SELECTION_KEYS)
    assert "hf_cache_dir" not in params and "fleurs_hf" not in params


# --- per-model language subsets --------------------------------------------------------------


def test_plan_pairs_respects_a_model_subset():
    codes = ["eng_Latn", "deu_Latn", "amh_Ethi", "khm_Khmr"]
    models = {"a": {}, "b": {"languages": ["eng_Latn", "deu_Latn"]}}
    pairs = common.plan_pairs(["a", "b"], codes, ["text", "speech"], "all", models)
    per_model = Counter(p[0] for p in pairs)
    assert per_model == {"a": 4 + 6 * 2, "b": 2 + 1 * 2}
    assert {p[1] for p in pairs if p[0] == "b"} | {p[3] for p in pairs if p[0] == "b"} == {
        "eng_Latn",
        "deu_Latn",
    }
    # a subset never renames or reorders the pairs it keeps
    full = set(common.plan_pairs(["b"], codes, ["text", "speech"], "all"))
    assert {p for p in pairs if p[0] == "b"} <= full


def sonar_config(config, subset=None) -> dict:
    cfg = copy.deepcopy(config)
    cfg["languages"] = ["eng_Latn", "deu_Latn", "amh_Ethi"]
    cfg["models"] = {
        "sonar": {
            "adapter": "sonar",
            "checkpoint": "sonar",
            "languages": subset,
            "init": "pretrained",
            "dtype": "float32",
        }
    }
    cfg["corpus"]["source"] = "fleurs_hf"
    return cfg


def test_unsupported_language_points_to_the_model_subset(config):
    with pytest.raises(
        common.ConfigError, match=r"no speech support for amh_Ethi.*models.sonar.languages"
    ):
        common.check_config(sonar_config(config))
    common.check_config(sonar_config(config, ["eng_Latn", "deu_Latn"]))


def test_model_subset_must_be_configured_languages(config):
    with pytest.raises(
        common.ConfigError, match=r"models.sonar.languages\[1\]: fra_Latn is not in"
    ):
        common.check_config(sonar_config(config, ["eng_Latn", "fra_Latn"]))
    cfg = sonar_config(config, ["deu_Latn"])
    cfg["similarity"]["cross_lingual"] = "english_centric"
    with pytest.raises(common.ConfigError, match="models.sonar.languages: .*english_centric"):
        common.check_config(cfg)


# --- the paper config -------------------------------------------------------------------------


def test_paper_config():
    cfg = load("configs/paper.yaml")
    table = languages.load_table()
    codes = cfg["languages"]
    assert len(codes) == 30 and {"amh_Ethi", "swh_Latn"} <= set(codes)
    assert not {"ibo_Latn", "xho_Latn"} & set(codes)
    assert Counter(table[c].resource for c in codes) == {"high": 10, "medium": 10, "low": 10}
    assert len({table[c].script for c in codes}) >= 18
    assert len({table[c].family for c in codes}) >= 13
    assert cfg["corpus"]["source"] == "fleurs_hf" and cfg["corpus"]["split"] == "test"
    assert cfg["extract"]["gpu"] == 1
    models = cfg["models"]
    assert models["seamless_v2"]["checkpoint"] == "facebook/seamless-m4t-v2-large"
    assert models["seamless_v2"]["dtype"] is None  # the family's official precision
    params = {name: extract_stage.model_params(cfg, name)["dtype"] for name in models}
    assert params == {
        "seamless_v2": "float16", "seamless_v2_random": "float16", "sonar": "float32",
        "sonar_random": "float32", "salmonn": "float16",
    }  # fmt: skip
    assert {m["adapter"] for m in models.values()} == {"seamless_m4t_v2", "sonar", "salmonn"}
    with_speech = [c for c in codes if table[c].sonar_speech]
    for name, spec in models.items():
        if spec["adapter"] == "sonar":
            assert spec["languages"] == with_speech, name
        else:
            assert spec["languages"] is None, name
    common.check_config(cfg)  # every model supports every language it runs on
    pairs = common.plan_pairs(list(models), codes, cfg["modalities"], "all", models)
    n_sonar = len(with_speech)
    per_model = Counter(p[0] for p in pairs)
    assert per_model["seamless_v2"] == 30 + 435 * 2
    assert per_model["sonar"] == n_sonar + n_sonar * (n_sonar - 1)
