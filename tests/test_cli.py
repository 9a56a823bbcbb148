"""Tests for the command line: ``gapscope summary`` / ``python -m gapscope summary``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from gapscope import __version__
from gapscope.__main__ import main
from gapscope.gaps import gap_table, length_adaptation_effect
from tests.test_gaps import COLUMNS, GROUPS, ROWS


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A workflow folder with results/summary/gaps.csv and the length-adaptation table."""
    similarity = pd.DataFrame(ROWS, columns=COLUMNS)
    summary = tmp_path / "run" / "results" / "summary"
    summary.mkdir(parents=True)
    gap_table(similarity).to_csv(summary / "gaps.csv", index=False)
    _, per_group = length_adaptation_effect(similarity, groups=GROUPS, overall=True)
    per_group.to_csv(summary / "length_adaptation_groups.csv", index=False)
    return tmp_path / "run"


def test_summary_prints_headline(run_dir, capsys):
    assert main(["summary", str(run_dir / "results")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "Headline gaps (svcca" in lines[0] and str(run_dir / "results") in lines[0]
    m1_last = next(line for line in lines if line.startswith("m1") and "layer02" in line)
    assert "0.800 (null 0.400)" in m1_last and "+0.100" in m1_last and "150" in m1_last
    assert any(line.startswith("m2") and "pooled" in line for line in lines)
    assert "Length adaptation" not in out  # only with --all


def test_summary_finds_the_table_from_other_paths(run_dir, capsys):
    for target in (run_dir, run_dir / "results" / "summary", run_dir / "results/summary/gaps.csv"):
        assert main(["summary", str(target)]) == 0
        assert "0.800 (null 0.400)" in capsys.readouterr().out


def test_summary_all_adds_length_adaptation(run_dir, capsys):
    assert main(["summary", str(run_dir), "--all"]) == 0
    out = capsys.readouterr().out
    assert "Length adaptation: cross-modal score before -> after" in out
    high = next(line for line in out.splitlines() if " high " in line)
    assert "+0.075 ± 0.035" in high  # mean and std of (0.10, 0.05)


def test_summary_missing_results(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "no gap table" in err and "run the workflow first" in err


def test_module_and_console_script(run_dir):
    result = subprocess.run(
        [sys.executable, "-m", "gapscope", "summary", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "0.800 (null 0.400)" in result.stdout
    version = subprocess.run(
        [sys.executable, "-m", "gapscope", "--version"], capture_output=True, text=True
    )
    assert version.stdout.strip() == f"gapscope {__version__}"
    usage = subprocess.run([sys.executable, "-m", "gapscope"], capture_output=True, text=True)
    assert usage.returncode == 2 and "summary" in usage.stderr
    script = Path(sys.executable).with_name("gapscope")
    if not script.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    result = subprocess.run([str(script), "summary", str(run_dir)], capture_output=True, text=True)
    assert result.returncode == 0 and "0.800 (null 0.400)" in result.stdout
