"""benchmarks/same_results.py, the byte-identity check of refactors: its comparison."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "same_results.py"


@pytest.fixture(scope="module")
def same_results():
    spec = importlib.util.spec_from_file_location("same_results", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tree(root: Path, stats: dict, table: bytes = b"a,b\n1,2\n") -> Path:
    (root / "results/activations/m/eng_Latn").mkdir(parents=True)
    (root / "results/activations/m/eng_Latn/text.json").write_text(json.dumps(stats))
    (root / "results/summary").mkdir(parents=True)
    (root / "results/summary/gaps.csv").write_bytes(table)
    return root


STATS = {"sentences": 10, "load_seconds": 1.5, "sentences_per_second": 3.0}


def test_identical_runs_differ_only_in_timings(tmp_path, same_results):
    base = tree(tmp_path / "a", STATS)
    head = tree(tmp_path / "b", {**STATS, "load_seconds": 9.0, "sentences_per_second": 1.0})
    assert same_results.compare(base, head) == []


def test_any_other_byte_or_file_is_reported(tmp_path, same_results):
    base = tree(tmp_path / "a", STATS)
    head = tree(tmp_path / "b", {**STATS, "sentences": 11}, table=b"a,b\n1,2.0000001\n")
    (head / "results/summary/extra.csv").write_text("x")
    assert same_results.compare(base, head) == [
        "only in head: results/summary/extra.csv",
        "differs: results/activations/m/eng_Latn/text.json",
        "differs: results/summary/gaps.csv",
    ]
