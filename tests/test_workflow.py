"""Workflow helpers: config checks that name the key, pair planning, rerun-relevant params."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import yaml
from snakemake.utils import validate

from gapscope.stages import common
from gapscope.stages import extract as extract_stage


@pytest.fixture
def config(repo_root):
    with open(repo_root / "config.yaml") as handle:
        cfg = yaml.safe_load(handle)
    validate(cfg, str(repo_root / "rules/schemas/config.schema.yaml"))  # fills the defaults
    return cfg


@pytest.fixture(scope="session")
def repo_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[1]


def test_default_config_passes(config):
    common.check_config(config)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["languages"].append("eng_latn"),
            r"languages\[12\]: unknown language 'eng_latn'.*eng_Latn",
        ),
        (
            lambda c: c["languages"].append("yor_Latn"),
            "languages: yor_Latn is not in the demo corpus",
        ),
        (lambda c: c["corpus"].update(source="fleurs_local"), "corpus.path: required"),
        (
            lambda c: c["models"]["seamless_v2_tiny"].update(adapter="sonar"),
            r"models.seamless_v2_tiny: sonar has no speech support for amh_Ethi",
        ),
        (
            lambda c: (
                c["languages"].remove("eng_Latn"),
                c["similarity"].update(cross_lingual="english_centric"),
            ),
            "similarity.cross_lingual",
        ),
        (lambda c: c["summarize"].update(metric="mknn"), "summarize.metric: 'mknn' is not"),
        (
            lambda c: (
                c["extract"].update(sonar_python="missing/python")
                or c["models"]["seamless_v2_tiny"].update(adapter="sonar", languages=["eng_Latn"])
            ),
            "extract.sonar_python: .*missing/python does not exist",
        ),
    ],
)
def test_bad_config_names_the_key(config, edit, message, tmp_path):
    """Every check runs in check_config, and each one raises the config error naming its key."""
    bad = copy.deepcopy(config)
    edit(bad)
    with pytest.raises(common.ConfigError, match=message):
        common.check_config(bad, tmp_path)


def test_plan_pairs_counts_and_order_independence():
    langs = ["eng_Latn", "deu_Latn", "zho_Hans"]
    pairs = common.plan_pairs(["m"], langs, ["text", "speech"], "all")
    cross_modal = [p for p in pairs if p[2] != p[4]]
    cross_lingual = [p for p in pairs if p[2] == p[4]]
    assert len(cross_modal) == 3 and len(cross_lingual) == 2 * 3
    assert set(pairs) == set(common.plan_pairs(["m"], langs[::-1], ["text", "speech"], "all"))
    assert all(p[1] < p[3] for p in cross_lingual)


def test_adding_a_language_only_adds_pairs():
    before = set(common.plan_pairs(["m"], ["eng_Latn", "deu_Latn"], ["text", "speech"], "all"))
    after = set(
        common.plan_pairs(["m"], ["eng_Latn", "deu_Latn", "fra_Latn"], ["text", "speech"], "all")
    )
    assert before < after
    assert all("fra_Latn" in (p[1], p[3]) for p in after - before)


def test_english_centric_and_none():
    langs = ["eng_Latn", "deu_Latn", "zho_Hans", "fra_Latn"]
    centric = common.plan_pairs(["m"], langs, ["text"], "english_centric")
    assert len(centric) == 3 and all("eng_Latn" in (p[1], p[3]) for p in centric)
    assert common.plan_pairs(["m"], langs, ["text"], "none") == []


def test_model_params_ignore_unrelated_settings(config):
    a = extract_stage.model_params(config, "seamless_v2_tiny")
    other = copy.deepcopy(config)
    other["similarity"]["null_permutations"] = 3
    other["extract"]["batch_tokens"] = 17
    assert extract_stage.model_params(other, "seamless_v2_tiny") == a
    other["models"]["seamless_v2_tiny"]["init"] = "random"
    assert extract_stage.model_params(other, "seamless_v2_tiny") != a


def test_run_identity_is_one_definition(config, repo_root):
    """The rule's params, the loader's spec and the store's attributes come from one identity;
    the schema's defaults fill what the config leaves out; dtype null is the family's."""
    from gapscope.identity import SPEC_KEYS, STORED_FIELDS, RunIdentity
    from gapscope.models import FAMILIES, ModelSpec

    config["models"]["m"] = {"adapter": "salmonn", "checkpoint": "x"}
    validate(config, str(repo_root / "rules/schemas/config.schema.yaml"))
    identity = extract_stage.run_identity(config, "m")
    assert identity.dtype == FAMILIES["salmonn"].dtype == "float16"
    assert (identity.init, identity.seed, identity.revision) == ("pretrained", 0, None)
    assert RunIdentity.from_params(identity.params()) == identity
    spec = ModelSpec(**identity.spec_fields())
    assert SPEC_KEYS == tuple(f.name for f in dataclasses.fields(ModelSpec))  # cannot drift
    assert (spec.name, spec.dtype, spec.init) == ("m", "float16", "pretrained")
    assert ModelSpec(name="m", adapter="salmonn", checkpoint="x") == spec  # same defaults
    attrs = identity.view_attrs("eng_Latn", "text", ["layer00"], "cpu")
    assert list(attrs) == [  # the key order of every store written so far (bit-identical)
        "adapter", "checkpoint", "revision", "init", "dtype", "model", "language", "modality",
        "pooling", "recording", "options", "seed", "taps", "device",
    ]  # fmt: skip
    assert {k: attrs[k] for k in STORED_FIELDS} == {k: getattr(identity, k) for k in STORED_FIELDS}
    with pytest.raises(KeyError, match="recording"):
        RunIdentity.from_params({k: v for k, v in identity.params().items() if k != "recording"})


def test_demo_checkpoint_detection():
    assert extract_stage.is_demo_checkpoint("resources/models/seamless_m4t_v2_tiny")
    assert not extract_stage.is_demo_checkpoint("facebook/seamless-m4t-v2-large")
    assert not extract_stage.is_demo_checkpoint("/data/models/seamless_m4t_v2_tiny")
