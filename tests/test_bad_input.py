"""Bad input the other test files do not cover; each error names what is at fault.

The README's "Bad input" table maps every case to its test.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from gapscope.models.base import NonFiniteActivationError, Pooled, check_finite
from gapscope.stages.similarity import align_ids
from gapscope.store import StoreError, ViewWriter, open_view

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "rules/schemas/config.schema.yaml")


@pytest.fixture
def config():
    with open(REPO / "config.yaml") as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda c: c["corpus"].update(sourse="demo"), "sourse"),  # unknown key (typo)
        (lambda c: c["similarity"].update(null_permutations=-1), "null_permutations"),
        (lambda c: c["corpus"].update(split="validation"), "validation"),
        (lambda c: c["models"]["seamless_v2_tiny"].update(init="trained"), "trained"),
        (lambda c: c.update(languages=["english"]), "english"),
        (lambda c: c["similarity"]["svcca"].update(variance=1.5), "1.5"),
    ],
)
def test_schema_rejects_bad_values_and_unknown_keys(config, edit, fragment):
    bad = copy.deepcopy(config)
    edit(bad)
    with pytest.raises(WorkflowError, match=fragment):
        validate(bad, schema=SCHEMA)


def test_schema_fills_defaults(config):
    slim = {"languages": ["eng_Latn"], "models": config["models"]}
    validate(slim, schema=SCHEMA)
    assert slim["similarity"]["null_permutations"] == 20
    assert slim["corpus"]["source"] == "demo"
    assert slim["extract"]["chunk_size"] == 256


def test_nan_and_inf_activations_name_the_sentences():
    vectors = np.ones((3, 4), np.float32)
    vectors[1, 2] = np.nan
    vectors[2, 0] = np.inf
    pooled = Pooled({"layer03": vectors}, {"layer03": np.ones(3)})
    with pytest.raises(NonFiniteActivationError, match=r"'layer03'.*\[11, 12\]"):
        check_finite(pooled, [10, 11, 12], "store x.zarr")


def test_duplicate_sentence_ids_in_a_store_are_refused():
    with pytest.raises(ValueError, match="view b.zarr: duplicate sentence ids"):
        align_ids(np.arange(5), np.array([0, 1, 1, 2, 3]), ("a.zarr", "b.zarr"))


ATTRS = {
    "model": "m",
    "adapter": "seamless_m4t_v2",
    "checkpoint": "c",
    "revision": None,
    "init": "pretrained",
    "dtype": "float32",
    "language": "eng_Latn",
    "modality": "text",
    "pooling": "masked_mean",
    "taps": ["layer00"],
}


def test_truncated_store_is_refused(tmp_path):
    writer = ViewWriter(tmp_path / "v.zarr", list(range(8)), ATTRS, chunk_size=4)
    for index in range(2):
        writer.write_chunk(index, {"layer00": np.ones((4, 3))}, {"layer00": np.ones(4)})
    writer.finalize(["layer00"])
    assert open_view(tmp_path / "v.zarr").read("layer00").shape == (8, 3)
    chunk = next((tmp_path / "v.zarr/taps/layer00/c").glob("1/*"))
    chunk.unlink()  # a copy that lost a file: Zarr alone would read zeros
    with pytest.raises(StoreError, match=r"truncated store, taps/layer00 has 1 of 2 chunks"):
        open_view(tmp_path / "v.zarr")
    shutil.rmtree(tmp_path / "v.zarr/lengths/layer00")
    with pytest.raises(StoreError, match="truncated store"):
        open_view(tmp_path / "v.zarr")
