"""The real workflow, run by real Snakemake on a small copy of the demo config."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gapscope.store import open_view

from .conftest import REPO, run_snakemake

LANGUAGES = ["eng_Latn", "deu_Latn", "zho_Hans"]
N_SENTENCES = 16

pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run Snakemake from this interpreter on the repository's Snakefile."""
    return run_snakemake(workdir, "--cores", "2", *args, timeout=1500)


def small_config(workdir: Path, languages=LANGUAGES) -> dict:
    with open(REPO / "config.yaml") as handle:
        cfg = yaml.safe_load(handle)
    cfg["languages"] = list(languages)
    cfg["corpus"]["max_sentences"] = N_SENTENCES
    cfg["similarity"].update(metrics=["svcca", "cka"], null_permutations=4)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    small_config(workdir)
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir, result


def test_stores_are_complete_and_aligned(demo_run):
    workdir, _ = demo_run
    for lang in LANGUAGES:
        for modality in ("text", "speech"):
            view = open_view(
                workdir / f"results/activations/seamless_v2_tiny/{lang}/{modality}.zarr"
            )
            assert view.attrs["complete"] is True
            assert view.attrs["language"] == lang and view.attrs["modality"] == modality
            np.testing.assert_array_equal(view.sentence_ids, np.arange(1, N_SENTENCES + 1))
            layers = [t for t in view.taps if t.startswith("layer")]
            assert layers == [f"layer{i:02d}" for i in range(5)]
            extra = {"text": ["encoder_out"], "speech": ["pre_adaptor", "post_adaptor"]}[modality]
            assert view.taps[len(layers) :] == extra
            for tap in view.taps:
                values = view.read(tap)
                assert values.shape == (N_SENTENCES, 64) and np.isfinite(values).all()
                assert (view.lengths(tap) > 0).all()
            if modality == "speech":
                ratio = view.lengths("layer00") / view.lengths("post_adaptor")
                assert 6 < ratio.mean() < 9  # the length adaptor shortens about 8x


def test_corpus_is_in_fleurs_layout(demo_run):
    workdir, _ = demo_run
    table = pd.read_csv(
        workdir / "resources/fleurs_demo/cmn_hans_cn/test.tsv", sep="\t", header=None, quoting=3
    )
    assert table.shape == (64, 7)
    wav = workdir / "resources/fleurs_demo/cmn_hans_cn/audio/test" / table.iloc[0, 1]
    import soundfile as sf

    info = sf.info(wav)
    assert info.samplerate == 16000 and info.channels == 1
    report = json.loads((workdir / "results/corpus/zho_Hans/report.json").read_text())
    assert report["sentence_ids"] == N_SENTENCES


def test_similarity_table(demo_run):
    workdir, _ = demo_run
    table = pd.read_parquet(workdir / "results/summary/similarity.parquet")
    expected = [
        "model",
        "comparison",
        "lang_a",
        "modality_a",
        "tap_a",
        "lang_b",
        "modality_b",
        "tap_b",
        "metric",
        "score",
        "null_mean",
        "null_std",
        "heldout",
        "ci_low",
        "ci_high",
        "n",
        "k_a",
        "k_b",
    ]
    assert list(table.columns) == expected
    assert set(table["comparison"]) == {"cross_modal", "cross_lingual_text", "cross_lingual_speech"}
    assert set(table["metric"]) == {"svcca", "cka"}
    assert (table["n"] == N_SENTENCES).all()
    svcca = table[table["metric"] == "svcca"]
    assert svcca["score"].between(0, 1).all() and svcca["null_mean"].notna().all()
    assert (svcca["k_a"] <= N_SENTENCES - 1).all()
    cross_modal = svcca[svcca["comparison"] == "cross_modal"]
    # 3 languages x (5 layers + 2 length-adaptation pairs)
    assert len(cross_modal) == 3 * 7
    assert {("encoder_out", "post_adaptor"), ("encoder_out", "pre_adaptor")} <= set(
        zip(cross_modal["tap_a"], cross_modal["tap_b"], strict=True)
    )
    # 3 language pairs x 6 text taps; 3 pairs x 7 speech taps
    assert (svcca["comparison"] == "cross_lingual_text").sum() == 3 * 6
    assert (svcca["comparison"] == "cross_lingual_speech").sum() == 3 * 7
    csv = pd.read_csv(workdir / "results/summary/similarity.csv")
    assert len(csv) == len(table)


def test_gaps_and_figure(demo_run):
    workdir, result = demo_run
    gaps = pd.read_csv(workdir / "results/summary/gaps.csv")
    layer = gaps[gaps["tap"] == "layer04"].iloc[0]
    table = pd.read_parquet(workdir / "results/summary/similarity.parquet")
    rows = table[(table["metric"] == "svcca") & (table["tap_a"] == "layer04")]
    for comparison in ("cross_modal", "cross_lingual_text", "cross_lingual_speech"):
        expected = rows.loc[rows["comparison"] == comparison, "score"].mean()
        assert layer[comparison] == pytest.approx(expected, rel=1e-5)
    for suffix in ("svg", "png"):
        path = workdir / f"results/figures/layer_curves.{suffix}"
        assert path.stat().st_size > 1000
    assert "seamless_v2_tiny" in result.stdout + result.stderr  # headline printed on success


def test_every_summary_output_is_built(demo_run):
    """The final targets are the summarize rules' own outputs: every one of them is built."""
    workdir, _ = demo_run
    text = (REPO / "rules/summarize.smk").read_text(encoding="utf-8")
    declared = set(re.findall(r'"(results/(?:summary|figures)/[^"{]*(?:{model}[^"]*)?)"', text))
    expected = {path.replace("{model}", "seamless_v2_tiny") for path in declared}
    assert len(expected) > 20, expected
    assert sorted(p for p in expected if not (workdir / p).exists()) == []


def test_second_run_does_nothing(demo_run):
    workdir, _ = demo_run
    result = snakemake(workdir, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def test_lint_is_clean(demo_run):
    workdir, _ = demo_run
    result = snakemake(workdir, "--lint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Lints for" not in result.stdout + result.stderr, result.stdout[-3000:]


def _planned_jobs(workdir: Path, edit) -> dict[str, int]:
    """Job counts per rule of a dry run after editing a copy of the run's config."""
    cfg = yaml.safe_load((workdir / "config.yaml").read_text())
    edit(cfg)
    other = workdir / "edited.yaml"
    other.write_text(yaml.safe_dump(cfg))
    result = run_snakemake(
        workdir, "--cores", "2", "--dry-run", "--quiet", "rules", configfile=other, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    counts = {}
    for line in (result.stdout + result.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["models"]["seamless_v2_tiny"].update(init="random"),
        lambda c: c["models"]["seamless_v2_tiny"].update(revision="v2"),
        lambda c: c["models"]["seamless_v2_tiny"].update(options={"note": "other"}),
        lambda c: c["corpus"].update(recording="all"),
    ],
)
def test_changing_what_defines_a_view_reruns_its_extraction(demo_run, edit):
    workdir, _ = demo_run
    jobs = _planned_jobs(workdir, edit)
    assert jobs.get("extract_activations") == 2 * len(LANGUAGES)
    assert "corpus_synthesize_speech" not in jobs


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c["extract"].update(batch_tokens=17, batch_seconds=3, chunk_size=5),
        lambda c: c["extract"].update(device="cpu", mem_mb=999),
    ],
)
def test_unrelated_edits_rerun_nothing(demo_run, edit):
    """Only the copy of the config shown in the report is rewritten."""
    workdir, _ = demo_run
    assert set(_planned_jobs(workdir, edit)) <= {"summarize_config", "all"}


def test_same_config_twice_gives_identical_results(demo_run, tmp_path):
    """Redo two views and every pair from scratch: stores and tables are bitwise identical."""
    import shutil

    workdir, _ = demo_run
    again = tmp_path / "again"
    shutil.copytree(workdir, again, ignore=shutil.ignore_patterns(".snakemake"))
    shutil.rmtree(again / "results/activations/seamless_v2_tiny/eng_Latn")
    shutil.rmtree(again / "results/similarity")
    shutil.copytree(again / "results/summary", tmp_path / "summary")
    shutil.rmtree(again / "results/summary")
    result = snakemake(again)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "extract_activations" in result.stderr, result.stderr[-3000:]
    for modality in ("text", "speech"):
        rel = f"results/activations/seamless_v2_tiny/eng_Latn/{modality}.zarr"
        first, second = open_view(workdir / rel), open_view(again / rel)
        assert first.attrs == second.attrs
        for tap in first.taps:
            assert np.array_equal(first.read(tap), second.read(tap)), tap
    old = pd.read_parquet(tmp_path / "summary/similarity.parquet")
    new = pd.read_parquet(again / "results/summary/similarity.parquet")
    pd.testing.assert_frame_equal(old, new, check_exact=True)


def test_sentence_level_metrics_drive_the_summaries(demo_run, tmp_path):
    """retrieval, retrieval_cosine and mknn beside SVCCA, retrieval as summarize.metric:
    every summary and the figure across metrics are written; SeamlessM4T's text and speech
    encoders share one space only at encoder_out ~ post_adaptor, so that is the one
    cross-modal retrieval tap pair."""
    import shutil

    workdir, _ = demo_run
    again = tmp_path / "metrics"
    shutil.copytree(workdir, again, ignore=shutil.ignore_patterns(".snakemake"))
    for stage in ("similarity", "summary"):  # no metadata was copied to see the change
        shutil.rmtree(again / "results" / stage)
    cfg = yaml.safe_load((again / "config.yaml").read_text())
    cfg["similarity"].update(
        metrics=["svcca", "retrieval", "retrieval_cosine", "mknn"], mknn={"k": 5}
    )
    cfg["summarize"] = {"metric": "retrieval"}
    (again / "config.yaml").write_text(yaml.safe_dump(cfg))
    result = snakemake(again)
    assert result.returncode == 0, result.stderr[-5000:]
    assert "extract_activations" not in result.stderr  # similarity options rerun no extraction
    table = pd.read_parquet(again / "results/summary/similarity.parquet")
    assert set(table["metric"]) == {"svcca", "retrieval", "retrieval_cosine", "mknn"}
    retrieval = table[table["metric"] == "retrieval"]
    modal = retrieval[retrieval["comparison"] == "cross_modal"]
    assert set(zip(modal["tap_a"], modal["tap_b"], strict=True)) == {
        ("encoder_out", "post_adaptor")
    }
    assert (retrieval["comparison"] == "cross_lingual_text").sum() == 3 * 6
    assert retrieval["score"].between(0, 1).all() and retrieval["null_mean"].notna().all()
    mknn = table[table["metric"] == "mknn"]
    assert (mknn["k_a"] == 5).all() and len(mknn) == len(table[table["metric"] == "svcca"])
    gaps = pd.read_csv(again / "results/summary/gaps.csv").set_index("tap")
    assert set(gaps["metric"]) == {"retrieval"}
    assert gaps.loc["encoder_out~post_adaptor", "cross_modal"] == pytest.approx(
        modal["score"].mean()
    )
    assert gaps.loc["layer04", ["cross_lingual_text", "cross_lingual_speech"]].notna().all()
    assert (again / "results/figures/metrics_by_layer.svg").stat().st_size > 5000
