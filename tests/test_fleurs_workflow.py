"""The real workflow, run by real Snakemake on small FLEURS-format corpora.

fleurs_local runs end to end (tiny SeamlessM4T v2, svcca); fleurs_hf (offline hub cache) and
hf_dataset (local parquet in the hub layout) run the corpus stage and must give the same
manifests. The corpus has ids missing in one language, a corrupt file, a silent id and a
44.1 kHz stereo file, so alignment by id and the skip rule are exercised for real.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gapscope import corpus
from gapscope.store import open_view
from tests.test_fleurs import (
    IDS,
    MISSING,
    build_fleurs_folder,
    build_hub_cache,
    build_parquet_dataset,
)

from .conftest import REPO, run_snakemake

LANGS = ["deu_Latn", "eng_Latn"]
EXPECTED = {  # ids each store must hold: deu lacks two ids, eng's 1947 is silent (skipped)
    "deu_Latn": [i for i in IDS if i not in MISSING["deu_Latn"]],
    "eng_Latn": [i for i in IDS if i != 1947],
}
COMMON = sorted(set(EXPECTED["deu_Latn"]) & set(EXPECTED["eng_Latn"]))

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    # two single-threaded extractions at once (they are import-bound); --cores after
    # --set-threads, so targets in args are not eaten by it
    return run_snakemake(
        workdir, "--set-threads", "extract_activations=1", "--cores", "2", *args, timeout=900
    )


def write_config(workdir: Path, **corpus_changes) -> dict:
    with open(REPO / "config.yaml") as handle:
        cfg = yaml.safe_load(handle)
    cfg["languages"] = list(LANGS)
    cfg["corpus"].update(on_bad_input="skip", **corpus_changes)
    cfg["similarity"].update(metrics=["svcca"], null_permutations=2, heldout=False)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


@pytest.fixture(scope="module")
def fleurs_root(tmp_path_factory):
    return build_fleurs_folder(tmp_path_factory.mktemp("fleurs"), LANGS)


@pytest.fixture(scope="module")
def local_run(fleurs_root, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("local")
    write_config(workdir, source="fleurs_local", path=str(fleurs_root))
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir


def test_stores_hold_every_usable_id_of_their_language(local_run):
    for lang, ids in EXPECTED.items():
        for modality in ("text", "speech"):
            view = open_view(
                local_run / f"results/activations/seamless_v2_tiny/{lang}/{modality}.zarr"
            )
            assert view.attrs["complete"] is True
            np.testing.assert_array_equal(view.sentence_ids, ids)


def test_pairs_use_the_id_intersection_and_record_n(local_run):
    table = pd.read_parquet(local_run / "results/summary/similarity.parquet")
    assert set(table["metric"]) == {"svcca"}
    n = table.groupby(["comparison", "lang_a"])["n"].unique().to_dict()
    assert n == {
        ("cross_modal", "deu_Latn"): [len(EXPECTED["deu_Latn"])],
        ("cross_modal", "eng_Latn"): [len(EXPECTED["eng_Latn"])],
        ("cross_lingual_text", "deu_Latn"): [len(COMMON)],
        ("cross_lingual_speech", "deu_Latn"): [len(COMMON)],
    }
    assert table["score"].between(0, 1).all() and table["null_mean"].notna().all()


def test_corpus_reports_and_coverage(local_run):
    eng = json.loads((local_run / "results/corpus/eng_Latn/report.json").read_text())
    assert eng["dropped_ids"] == [1947] and eng["audio_rates"] == {"16000": 8, "44100": 1}
    deu = json.loads((local_run / "results/corpus/deu_Latn/report.json").read_text())
    assert deu["fallback_recordings"] == [{"sentence_id": 1912, "recording": 1}]
    assert deu["ids_in_table"] == len(EXPECTED["deu_Latn"])
    cov = pd.read_csv(local_run / "results/corpus/coverage.tsv", sep="\t")
    assert cov["sentence_id"].tolist() == IDS
    missing = {lang: cov.loc[cov[lang] == 0, "sentence_id"].tolist() for lang in LANGS}
    assert missing == {"deu_Latn": sorted(MISSING["deu_Latn"]), "eng_Latn": [1947]}
    common = (local_run / "results/corpus/common_ids.txt").read_text().split()
    assert [int(i) for i in common] == COMMON
    summary = json.loads((local_run / "results/corpus/coverage.json").read_text())
    assert summary["ids_in_every_language"] == len(COMMON)


def test_nothing_left_to_do(local_run):
    result = snakemake(local_run, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def corpus_only(workdir: Path) -> dict[str, pd.DataFrame]:
    result = snakemake(workdir, "results/corpus/coverage.tsv")
    assert result.returncode == 0, result.stderr[-6000:]
    return {
        lang: corpus.read_manifest(workdir / f"results/corpus/{lang}/manifest.tsv")
        for lang in LANGS
    }


def test_hub_source_with_fixed_ids_offline(fleurs_root, local_run, tmp_path):
    cache = build_hub_cache(tmp_path / "hf-cache", fleurs_root, LANGS)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(str(i) for i in [1905, 1912, 1931, 1947, 1962, 424242]) + "\n")
    workdir = tmp_path / "hub"
    write_config(workdir, source="fleurs_hf", hf_cache_dir=str(cache), sentence_ids=str(ids))
    manifests = corpus_only(workdir)
    assert (workdir / "resources/fleurs_hf/de_de/audio/test").is_dir()
    assert manifests["deu_Latn"]["sentence_id"].tolist() == [1905, 1912, 1947, 1962]
    assert manifests["eng_Latn"]["sentence_id"].tolist() == [1905, 1912, 1931, 1962]
    local = corpus.read_manifest(local_run / "results/corpus/deu_Latn/manifest.tsv")
    local = local[local["sentence_id"].isin([1905, 1912, 1947, 1962])]
    assert manifests["deu_Latn"]["text"].tolist() == local["text"].tolist()
    deu = json.loads((workdir / "results/corpus/deu_Latn/report.json").read_text())
    assert deu["missing_ids"] == [1931, 424242]
    cov = pd.read_csv(workdir / "results/corpus/coverage.tsv", sep="\t")
    assert cov.set_index("sentence_id").loc[424242, "requested"] == 1
    assert cov.set_index("sentence_id").loc[424242, "n_languages"] == 0


def test_parquet_dataset_source(fleurs_root, local_run, tmp_path):
    ds = build_parquet_dataset(tmp_path / "ds", fleurs_root, LANGS, by_column=True)
    workdir = tmp_path / "parquet"
    write_config(
        workdir,
        source="hf_dataset",
        hf_cache_dir=str(tmp_path / "cache"),
        hf_dataset={
            "path": str(ds),
            "language_column": "locale",
            "language_code": "fleurs",
            "id_column": "sentence_id",
            "text_column": "sentence",
            "audio_column": "speech",
        },
    )
    manifests = corpus_only(workdir)
    for lang in LANGS:
        local = corpus.read_manifest(local_run / f"results/corpus/{lang}/manifest.tsv")
        assert manifests[lang]["sentence_id"].tolist() == local["sentence_id"].tolist()
        assert manifests[lang]["recording"].tolist() == local["recording"].tolist()
