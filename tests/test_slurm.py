"""The demo workflow on a real single-node SLURM cluster (snakemake-executor-plugin-slurm).

The module brings a cluster up with ``.ci/slurm/up.sh`` (munged, slurmctld, slurmd; no systemd)
unless one started by that script is already running, and stops exactly what it started with
``.ci/slurm/down.sh``. The workflow runs through ``--executor slurm`` with a profile derived
from ``profiles/slurm`` (site placeholders replaced, no GPU request, squeue status mode).

Run 1 is a preemption drill: while it runs, one extraction job is cancelled with ``scancel``
after its first store chunk is on disk. No store of that view may be marked complete, and the
other jobs carry on. Run 2 (a plain rerun) finishes the view and everything downstream.

Skips when not root, or when SLURM cannot be installed or started; under ``CI=true`` it fails
instead. Deselect with ``-m "not slurm"``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from gapscope.store import StoreError, open_view

from .conftest import REPO, snakemake_command

SLURM_DIR = Path(os.environ.get("LOCAL_SLURM_DIR", "/tmp/gapscope-slurm"))
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LANGUAGES = ["eng_Latn", "deu_Latn"]
N_SENTENCES = 12
CHUNK_SIZE = 4  # 3 store chunks per view, so a job can be caught between chunks
MODEL = "seamless_v2_tiny"
KILLED = (MODEL, "deu_Latn", "speech")  # the view whose extraction job is cancelled
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail in CI, where the cluster must run."""
    if CI:
        pytest.fail(f"SLURM test cannot run in CI: {reason}")
    pytest.skip(reason)


def _alive(pid_file: Path, name: str) -> bool:
    try:
        pid = int(pid_file.read_text())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return False
    return comm == name[:15] and state != "Z"


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running single-node cluster; stopped afterwards if this fixture started it."""
    if os.geteuid() != 0:
        unavailable("needs root: .ci/slurm/up.sh installs Slurm and starts munged/slurmctld")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        unavailable("snakemake-executor-plugin-slurm is not installed (pip install '.[slurm]')")
    ours_running = _alive(SLURM_DIR / "pids/slurmctld.pid", "slurmctld")
    up = subprocess.run(
        ["bash", str(REPO / ".ci/slurm/up.sh")], capture_output=True, text=True, timeout=900
    )
    if up.returncode != 0:
        if not ours_running:
            subprocess.run(["bash", str(REPO / ".ci/slurm/down.sh")], capture_output=True)
        unavailable(f"could not start slurmctld/slurmd: {up.stderr.strip()[-1500:]}")
    yield
    if not ours_running:
        down = subprocess.run(
            ["bash", str(REPO / ".ci/slurm/down.sh")], capture_output=True, text=True, timeout=120
        )
        assert down.returncode == 0, down.stderr
        for name in ("slurmd", "slurmctld", "munged"):
            assert not _alive(SLURM_DIR / f"pids/{name}.pid", name)


def ci_profile(folder: Path) -> Path:
    """profiles/slurm as shipped, sized for this 2-CPU node: no GPU, the squeue status mode."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile.update(
        {
            "jobs": 4,
            "cores": 2,  # one group job may use the whole 2-CPU node
            "latency-wait": 5,
            "slurm-status-command": "squeue",  # no slurmdbd, so no sacct
            "slurm-init-seconds-before-status-checks": 2,
            "slurm-keep-successful-logs": True,
        }
    )
    # no partition and no account: the shipped profile leaves both to the cluster's defaults
    assert not {"slurm_partition", "slurm_account"} & set(profile["default-resources"])
    profile["default-resources"].update(mem_mb=1000, runtime=10)
    extract = profile["set-resources"]["extract_activations"]
    assert "slurm_partition" not in extract
    for key in ("gpu", "gpu_model", "cpus_per_gpu"):
        extract.pop(key, None)
    extract.update(mem_mb=2000, runtime=10)
    profile["set-resources"]["similarity_view"].update(mem_mb=1000, runtime=5)
    profile["set-resources"]["similarity_pair"].update(mem_mb=1000, runtime=5)
    profile["set-threads"] = {"extract_activations": 1}  # two extractions side by side
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def small_config(workdir: Path) -> None:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["languages"] = LANGUAGES
    cfg["corpus"]["max_sentences"] = N_SENTENCES
    cfg["extract"]["chunk_size"] = CHUNK_SIZE
    cfg["similarity"].update(metrics=["svcca", "cka"], null_permutations=4)
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


def snakemake_cmd(workdir: Path, profile: Path, *args: str) -> list[str]:
    return snakemake_command(workdir, "--workflow-profile", str(profile), *args)


ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def store_attrs(path: Path) -> dict | None:
    """The attributes of a Zarr v3 group, or None while it does not exist (or is mid-write)."""
    try:
        return json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None


def staging_of(final: Path) -> Path:
    try:
        from gapscope.store import staging_path
    except ImportError:  # stores written in place
        return final
    return Path(staging_path(final))


def squeue(*args: str) -> list[list[str]]:
    out = subprocess.run(["squeue", "-h", *args], capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines() if line.strip()]


def cancel_mid_extraction(proc: subprocess.Popen, final: Path, timeout: float = 600) -> dict:
    """Wait until the view's first chunk is on disk, then scancel its SLURM job."""
    staging = staging_of(final)
    wildcards = "_".join(KILLED)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        attrs = store_attrs(staging)
        if attrs and attrs.get("complete") is not True and attrs.get("chunks_done", 0) >= 1:
            jobs = [
                job_id
                for job_id, comment in squeue("-t", "RUNNING", "-o", "%i|%k")
                if "extract_activations" in comment and comment.endswith(wildcards)
            ]
            if jobs:
                subprocess.run(["scancel", jobs[0]], check=True)
                return {"job_id": jobs[0], "attrs_at_cancel": attrs}
        time.sleep(0.05)
    pytest.fail(f"never saw {staging} between its first chunk and completion")


def submissions(log: str) -> list[tuple[str, str, str]]:
    """(SLURM job id, rule_<rule> or group_<group>..., wildcards) of every submission in a log."""
    found = []
    for job_id, path in SUBMITTED.findall(log):
        parts = Path(path).relative_to(Path(path).parents[-1]).parts
        at = parts.index("slurm_logs")
        kind = parts[at + 1]
        wildcards = parts[at + 2] if len(parts) > at + 3 else ""
        found.append((job_id, kind, wildcards))
    return found


def job_state(job_id: str) -> str:
    for _ in range(100):
        rows = squeue("-t", "all", "-j", job_id, "-o", "%T")
        if rows and rows[0][0] not in ("RUNNING", "COMPLETING", "PENDING"):
            return rows[0][0]
        time.sleep(0.2)
    return rows[0][0] if rows else "UNKNOWN"


@pytest.fixture(scope="module")
def slurm_runs(slurm_cluster, tmp_path_factory):
    """Run 1 with one extraction cancelled mid-run, then run 2 to completion."""
    workdir = tmp_path_factory.mktemp("slurm")
    small_config(workdir)
    profile = ci_profile(workdir / "profile")
    final = workdir / "results/activations/{}/{}/{}.zarr".format(*KILLED)
    info: dict = {"workdir": workdir, "final": final}
    started = time.monotonic()
    log1 = workdir / "run1.log"
    with open(log1, "w") as handle:
        proc = subprocess.Popen(
            snakemake_cmd(workdir, profile, "--retries", "0"),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=ENV,
        )
        try:
            info["cancel"] = cancel_mid_extraction(proc, final)
            info["cancelled_state"] = job_state(info["cancel"]["job_id"])
            info["final_after_cancel"] = store_attrs(final)
            info["staging_after_cancel"] = store_attrs(staging_of(final))
            info["rc1"] = proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
    info["final_after_run1"] = final.exists()
    info["readable_after_run1"] = []
    for path in {final, staging_of(final)}:
        try:
            open_view(path)
        except StoreError:
            continue
        info["readable_after_run1"].append(str(path))
    info["log1"] = log1.read_text()
    run2 = subprocess.run(
        snakemake_cmd(workdir, profile), capture_output=True, text=True, env=ENV, timeout=900
    )
    info["rc2"] = run2.returncode
    info["log2"] = run2.stdout + run2.stderr
    info["wall_seconds"] = time.monotonic() - started
    print(
        f"\nSLURM runs: {info['wall_seconds']:.0f} s wall; "
        f"run 1 submitted {len(SUBMITTED.findall(info['log1']))} SLURM jobs, "
        f"run 2 {len(SUBMITTED.findall(info['log2']))}; cancelled job {info['cancel']['job_id']} "
        f"after {info['cancel']['attrs_at_cancel'].get('chunks_done')} finished chunk(s)"
    )
    return info


def test_cancelled_extraction_left_no_complete_store(slurm_runs):
    info = slurm_runs
    assert info["cancelled_state"] == "CANCELLED", info["cancelled_state"]
    assert info["rc1"] != 0, "run 1 should report the cancelled job as failed"
    assert "SLURM" in info["log1"] and info["cancel"]["job_id"] in info["log1"]
    # Nothing claims completeness: the published path is absent or unfinished ...
    final = info["final_after_cancel"]
    assert final is None or final.get("complete") is not True
    assert not info["final_after_run1"]
    assert info["readable_after_run1"] == [], "open_view must refuse an unfinished store"
    # ... and the unfinished store (if the job got that far) is refused by readers.
    partial = info["staging_after_cancel"]
    assert partial is None or partial.get("complete") is not True


def test_rerun_completes_the_cancelled_view(slurm_runs):
    info = slurm_runs
    assert info["rc2"] == 0, info["log2"][-5000:]
    view = open_view(info["final"])
    assert view.attrs["complete"] is True
    np.testing.assert_array_equal(view.sentence_ids, np.arange(1, N_SENTENCES + 1))
    staging = staging_of(info["final"])
    if staging != info["final"]:
        assert not staging.exists(), "the staging store should have been published"
    stats = json.loads(info["final"].with_suffix(".json").read_text())
    print(f"\nrerun stats of the cancelled view: {stats}")
    extracted = [w for _, kind, w in submissions(info["log2"]) if kind.startswith("rule_extract")]
    assert extracted == ["_".join(KILLED)], f"run 2 extracted {extracted}"


def test_every_store_complete_and_outputs_written(slurm_runs):
    workdir = slurm_runs["workdir"]
    for lang in LANGUAGES:
        for modality in ("text", "speech"):
            view = open_view(workdir / f"results/activations/{MODEL}/{lang}/{modality}.zarr")
            assert view.attrs["complete"] is True
    table = pd.read_parquet(workdir / "results/summary/similarity.parquet")
    assert set(table["comparison"]) == {"cross_modal", "cross_lingual_text", "cross_lingual_speech"}
    assert (table["n"] == N_SENTENCES).all()
    assert (workdir / "results/summary/gaps.csv").stat().st_size > 0
    assert (workdir / "results/figures/layer_curves.svg").stat().st_size > 1000


def test_jobs_ran_as_slurm_jobs_in_groups(slurm_runs):
    workdir = slurm_runs["workdir"]
    runs = [submissions(slurm_runs["log1"]), submissions(slurm_runs["log2"])]
    job_ids = [job_id for run in runs for job_id, _, _ in run]
    assert len(set(job_ids)) == len(job_ids) >= 5
    kinds = [kind for run in runs for _, kind, _ in run]
    for rule in ("similarity_view", "similarity_pair"):
        assert f"rule_{rule}" not in kinds, f"{rule} jobs should be submitted as group jobs"
    # a group's log folder is named group_<group>_<its rules>
    views = [kind for kind in kinds if kind == "group_similarity_views_similarity_view"]
    pairs = [kind for kind in kinds if kind == "group_similarity_similarity_pair"]
    assert len(views) == 1, kinds  # both languages' prepared views in one submission
    assert len(pairs) == 1, kinds  # all 3 language pairs (4 comparisons) in one submission
    tables = {p.name for p in (workdir / f"results/similarity/{MODEL}").glob("*.tsv")}
    a, b = sorted(LANGUAGES)
    assert tables == {f"{a}~{a}.tsv", f"{b}~{b}.tsv", f"{a}~{b}.tsv"}
    extractions = [w for run in runs for _, kind, w in run if kind == "rule_extract_activations"]
    assert len(extractions) == 2 * len(LANGUAGES) + 1  # every view once, the cancelled one twice
    slurm_logs = list((workdir / ".snakemake/slurm_logs").rglob("*.log"))
    assert slurm_logs, "the plugin keeps SLURM logs (slurm-keep-successful-logs)"


def test_rule_code_reads_no_slurm_variables():
    """Rule code must run the same under any executor (the jobstep strips SLURM_* anyway)."""
    offenders = []
    for folder in ("rules", "workflow_scripts", "gapscope"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".smk") and "SLURM_" in path.read_text():
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, offenders
