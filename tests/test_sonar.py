"""SONAR from the main environment: family facts, config checks, rule routing, and the
SONAR-environment tests (tests/sonar) run through that environment's interpreter.

The main environment cannot import fairseq2 (it pins torch 2.8.0); everything that needs it
runs as a subprocess of ``.venv-sonar/bin/python`` (built by ``bash envs/install_sonar.sh``)
and is skipped, with the reason, only when that environment is absent.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gapscope.models import FAMILIES, cross_modal_pairs
from gapscope.stages import common
from gapscope.stages import extract as extract_stage

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "rules/schemas/config.schema.yaml").read_text())
SONAR_PYTHON = REPO / SCHEMA["properties"]["extract"]["properties"]["sonar_python"]["default"]
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Skipped without the SONAR environment, except under CI (.ci/run builds it): there it fails.
needs_sonar_env = pytest.mark.skipif(
    not SONAR_PYTHON.exists() and not CI,
    reason=f"no SONAR environment at {SONAR_PYTHON} (build it: bash envs/install_sonar.sh)",
)


@pytest.fixture
def config() -> dict:
    with open(REPO / "config.yaml") as handle:
        cfg = yaml.safe_load(handle)
    cfg["models"] = {"sonar_m": {"adapter": "sonar", "checkpoint": "sonar"}}
    return cfg


def test_family_taps_pairs_and_language_columns():
    sonar = FAMILIES["sonar"]
    assert sonar.language_column == {"text": "sonar_text", "speech": "sonar_speech"}
    assert sonar.length_adaptation == (("pooled", "pre_pooler"), ("pooled", "pooled"))
    text = [f"layer{i:02d}" for i in range(4)] + ["pooled"]
    speech = [f"layer{i:02d}" for i in range(3)] + ["pre_pooler", "pooled"]
    assert cross_modal_pairs("sonar", text, speech) == [
        ("layer00", "layer00"),
        ("layer01", "layer01"),
        ("layer02", "layer02"),
        ("pooled", "pre_pooler"),
        ("pooled", "pooled"),
    ]
    assert sonar.supports("amh_Ethi", "text") and not sonar.supports("amh_Ethi", "speech")
    assert sonar.supports("zho_Hans", "speech")  # SONAR's cmn encoder


def test_main_environment_says_where_sonar_runs():
    import importlib.util

    if importlib.util.find_spec("fairseq2") is not None:
        pytest.skip("this environment has fairseq2")
    from gapscope.models import ModelSpec, load_adapter

    spec = ModelSpec(name="m", adapter="sonar", checkpoint="sonar")
    with pytest.raises(RuntimeError, match="SONAR environment.*install_sonar.sh"):
        load_adapter(spec, "text")


def test_language_without_speech_encoder_is_refused_before_any_job(config):
    """amh_Ethi has a SONAR text code but no speech encoder: check_config names both."""
    with pytest.raises(
        common.ConfigError, match=r"models\.sonar_m: sonar has no speech support for "
    ):
        common.check_config(config)
    with pytest.raises(common.ConfigError, match="amh_Ethi"):
        common.check_config(config)
    text_only = copy.deepcopy(config)
    text_only["modalities"] = ["text"]
    common.check_config(text_only)
    subset = copy.deepcopy(config)
    subset["models"]["sonar_m"]["languages"] = [c for c in config["languages"] if c != "amh_Ethi"]
    common.check_config(subset)


def test_sonar_models_and_wildcard_regexes(config):
    config["models"]["tiny"] = {"adapter": "seamless_m4t_v2", "checkpoint": "x"}
    assert extract_stage.sonar_models(config) == ["sonar_m"]
    assert extract_stage.models_regex(["a", "b"]) == "a|b"
    import re

    assert re.fullmatch(extract_stage.models_regex([]), "") is None  # matches nothing, not even ""


def test_sonar_python_is_checked_before_any_job(config, tmp_path):
    config["extract"] = {"sonar_python": "nowhere/bin/python"}
    assert extract_stage.sonar_python(config, tmp_path) == str(tmp_path / "nowhere/bin/python")
    with pytest.raises(common.ConfigError, match="extract.sonar_python: .*install_sonar.sh"):
        extract_stage.check_sonar_python(config, tmp_path)
    config["extract"]["sonar_python"] = sys.executable  # absolute: used as is
    extract_stage.check_sonar_python(config, tmp_path)
    config["models"] = {"tiny": {"adapter": "seamless_m4t_v2", "checkpoint": "x"}}
    config["extract"]["sonar_python"] = "nowhere/bin/python"
    extract_stage.check_sonar_python(config, tmp_path)  # no SONAR model: not needed


def test_bare_command_name_is_looked_up_when_the_job_runs(config, tmp_path):
    config["extract"] = {"sonar_python": "python"}  # e.g. --sdm conda with envs/sonar.yaml
    assert extract_stage.sonar_python(config, tmp_path) == "python"
    extract_stage.check_sonar_python(config, tmp_path)


def test_conda_file_pins_what_the_venv_pins():
    text = (REPO / "envs" / "sonar.txt").read_text().splitlines()
    pins = [line.strip() for line in text if line.strip() and not line.startswith("#")]
    conda = yaml.safe_load((REPO / "envs" / "sonar.yaml").read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pip == pins
    assert all("==" in pin for pin in pins)


def _snakemake(workdir: Path, cfg: dict, *args: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"),
        "--cores", "2", *args,
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)


@pytest.mark.workflow
def test_snakemake_reports_missing_speech_encoder_and_runs_nothing(config, tmp_path):
    result = _snakemake(tmp_path, config)
    assert result.returncode != 0
    assert "models.sonar_m: sonar has no speech support for amh_Ethi" in result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


@pytest.mark.workflow
def test_dry_run_sends_sonar_models_to_the_sonar_rule(config, tmp_path):
    config["languages"] = ["eng_Latn", "deu_Latn"]
    config["extract"] = {"sonar_python": sys.executable}
    config["models"]["tiny"] = {"adapter": "seamless_m4t_v2", "checkpoint": "x"}
    result = _snakemake(tmp_path, config, "--dry-run", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = dict(
        line.split()[:2] for line in result.stdout.splitlines() if line.startswith("extract_")
    )
    assert counts["extract_activations_sonar"] == "4"  # 2 languages x 2 modalities
    assert counts["extract_activations"] == "4"


@needs_sonar_env
def test_sonar_environment_suite():
    """tests/sonar (tiny SONAR encoders through fairseq2) in the SONAR environment."""
    result = subprocess.run(
        [str(SONAR_PYTHON), "-m", "pytest", "tests/sonar", "-q", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1]


@needs_sonar_env
@pytest.mark.workflow
def test_workflow_runs_a_tiny_sonar_model(config, tmp_path):
    """The real workflow with a tiny SONAR model: the shell rule, stores, similarity, gaps."""
    models = tmp_path / "tiny_sonar"
    build = (
        "import sys; from gapscope import languages;"
        "from tests.builders.sonar_tiny import build_tiny_sonar;"
        "codes = [l.sonar_text for l in languages.load_table().values() if l.sonar_text];"
        "build_tiny_sonar(sys.argv[1], ['The red bus is late.', 'Der Bus ist spät.'] * 5,"
        " codes, ['eng', 'deu'])"
    )
    built = subprocess.run(
        [str(SONAR_PYTHON), "-c", build, str(models)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    config["languages"] = ["eng_Latn", "deu_Latn"]
    config["corpus"]["max_sentences"] = 8
    config["models"] = {"sonar_tiny": {"adapter": "sonar", "checkpoint": str(models)}}
    config["similarity"].update(metrics=["svcca"], null_permutations=2)
    workdir = tmp_path / "run"
    result = _snakemake(workdir, config)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "extract_activations_sonar" in result.stderr

    import pandas as pd

    from gapscope.store import open_view

    view = open_view(workdir / "results/activations/sonar_tiny/deu_Latn/speech.zarr")
    assert view.taps == ["layer00", "layer01", "layer02", "pre_pooler", "pooled"]
    table = pd.read_parquet(workdir / "results/summary/similarity.parquet")
    cross = table[table["comparison"] == "cross_modal"]
    pairs = set(zip(cross["tap_a"], cross["tap_b"], strict=True))
    assert {("pooled", "pre_pooler"), ("pooled", "pooled"), ("layer02", "layer02")} <= pairs
