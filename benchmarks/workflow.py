"""Benchmark: Snakemake's own overhead on gapscope's workflow (DAG size, dry runs, scheduling).

Prints two tables; never asserts anything.

1. Dry runs of large configs: wall time (median of --repeats runs) and job counts, for
   - the paper config ``configs/paper.yaml`` (or, when it is absent or does not validate yet,
     a synthetic equivalent: 3 demo-style SeamlessM4T models x 30 languages, said so in the
     table), and
   - the same models on all 102 FLEURS languages of the language table (each model keeps the
     languages its adapter supports);
   each planned locally and with ``profiles/slurm`` (group jobs), whose count of SLURM
   submissions is the number that matters on a cluster.
2. The similarity stage of the demo (real runs, --cores 2): stage wall time, how much of it is
   Snakemake startup/DAG building, the in-process compute time of the same pairs, and the
   remainder (per-job process start, imports and scheduling), for the default and the greedy
   scheduler.

    python benchmarks/workflow.py                   # ~25 min on 2 busy cores
    python benchmarks/workflow.py --skip-demo       # only the dry runs (~12 min)
    python benchmarks/workflow.py --repeats 5 --languages 4 --workdir /tmp/gapscope-bench
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gapscope import languages  # noqa: E402
from gapscope.models import FAMILIES  # noqa: E402

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
STATS_ROW = re.compile(r"^(\w+)\s+(\d+)\s*$")
DEMO_LANGUAGES = ["eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "hin_Deva"]


def snakemake(workdir: Path, config: Path, *args: str, check: bool = True, timeout=None):
    """Run Snakemake on the repository's Snakefile; return (seconds, output, returncode).

    With ``timeout``, a run that takes longer is stopped and reported as (None, "", None).
    """
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config),
        *args,
    ]
    started = time.perf_counter()
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "", None
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{output[-3000:]}")
    return seconds, output, result.returncode


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> count (plus 'total')."""
    stats, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats:"):
            inside = True
            continue
        if inside:
            match = STATS_ROW.match(line.strip())
            if match:
                stats[match.group(1)] = int(match.group(2))
                if match.group(1) == "total":
                    break
    return stats


def submissions(output: str) -> int:
    """SLURM submissions a dry run with groups plans: group jobs + ungrouped non-local jobs."""
    groups = sum(1 for line in output.splitlines() if re.search(r"\] Group job \w+", line))
    plain = sum(
        1
        for line in output.splitlines()
        if re.match(r"^rule (\w+):$", line) and line != "rule all:"
    )
    return groups + plain


def fake_fleurs(root: Path, codes) -> None:
    """Empty FLEURS-layout inputs so a fleurs_local config plans without data."""
    for code in codes:
        fleurs = languages.get(code).fleurs
        (root / fleurs / "audio/test").mkdir(parents=True, exist_ok=True)
        (root / fleurs / "test.tsv").touch()


def supported(adapter: str, codes) -> list[str]:
    family = FAMILIES[adapter]
    return [c for c in codes if family.supports(c, "text") and family.supports(c, "speech")]


def synthetic_paper(folder: Path) -> dict:
    """3 demo-style models (SeamlessM4T v2, v1, v2 random-init) x 30 languages, local corpus."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    table = languages.load_table()
    codes = supported("seamless_m4t_v2", sorted(table))[:30]
    fake_fleurs(folder / "fleurs", sorted(table))
    cfg["corpus"].update(source="fleurs_local", path=str(folder / "fleurs"))
    cfg["languages"] = codes
    v2 = dict(cfg["models"]["seamless_v2_tiny"])
    cfg["models"] = {
        "seamless_v2_tiny": v2,
        "seamless_v2_random": {**v2, "init": "random"},
        "seamless_v1_tiny": {
            **v2,
            "adapter": "seamless_m4t",
            "checkpoint": "resources/models/seamless_m4t_tiny",
        },
    }
    return cfg


def all_languages(cfg: dict) -> dict:
    """The same models on every language of the table; each model keeps what it supports."""
    cfg = yaml.safe_load(yaml.safe_dump(cfg))
    codes = sorted(languages.load_table())
    cfg["languages"] = codes
    for model in cfg["models"].values():
        have = supported(model["adapter"], codes)
        if len(have) < len(codes):
            model["languages"] = have
    return cfg


def write(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def median_dry_run(workdir: Path, config: Path, repeats: int, *args: str) -> tuple[float, str]:
    """Median wall time of quiet dry runs, and the last run's output."""
    times = []
    for _ in range(repeats):
        seconds, output, _ = snakemake(workdir, config, "-n", "--quiet", "rules", *args)
        times.append(seconds)
    return statistics.median(times), output


def dry_runs(folder: Path, repeats: int, big_repeats: int, group_timeout: float) -> list[dict]:
    paper = REPO / "configs/paper.yaml"
    label = "configs/paper.yaml"
    cfg = yaml.safe_load(paper.read_text()) if paper.exists() else None
    if cfg is not None:
        workdir = folder / "probe"
        workdir.mkdir()
        _, output, rc = snakemake(workdir, paper, "-n", "--quiet", "rules", check=False)
        if rc != 0:
            print(
                f"# configs/paper.yaml does not plan yet; using a synthetic one:\n{output[-800:]}"
            )
            cfg = None
    if cfg is None:
        cfg = synthetic_paper(folder)
        label = "synthetic: 3 demo models x 30 languages"
    big = all_languages(cfg)
    if cfg["corpus"]["source"] == "fleurs_local":
        fake_fleurs(Path(cfg["corpus"]["path"]), big["languages"])
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile.pop("groups"), profile.pop("group-components")
    (folder / "slurm_nogroups").mkdir()
    write(profile, folder / "slurm_nogroups/config.yaml")
    rows = []
    for name, config, n in (
        (label, cfg, repeats),
        ("102 languages, same models", big, big_repeats),
    ):
        path = write(config, folder / f"config_{len(rows)}.yaml")
        workdir = folder / f"work_{len(rows)}"
        workdir.mkdir()

        local, output = median_dry_run(workdir, path, n, "--cores", "2")
        slurm, _ = median_dry_run(
            workdir, path, n, "--workflow-profile", str(folder / "slurm_nogroups")
        )
        stats = job_stats(output)
        # once, printing every job (to count the group jobs), within a time limit
        grouped, grouped_output, _ = snakemake(
            workdir,
            path,
            "-n",
            "--workflow-profile",
            str(REPO / "profiles/slurm"),
            timeout=group_timeout,
        )
        rows.append(
            {
                "config": name,
                "models": len(config["models"]),
                "langs": len(config["languages"]),
                "jobs": stats.get("total", 0),
                "extract": sum(n for r, n in stats.items() if r.startswith("extract_activations")),
                "views": stats.get("similarity_view", 0),
                "pairs": stats.get("similarity_pair", 0),
                "local_s": local,
                "slurm_s": slurm,
                "slurm_groups_s": grouped if grouped else f"> {group_timeout:.0f}",
                "submissions": submissions(grouped_output) if grouped else "-",
            }
        )
    return rows


def demo_stage(workdir: Path, n_languages: int, repeats: int) -> list[dict]:
    """Time the similarity stage of the demo: Snakemake wall vs in-process compute."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["languages"] = DEMO_LANGUAGES[:n_languages]
    cfg["corpus"]["max_sentences"] = 16
    cfg["similarity"].update(metrics=["svcca", "cka"], null_permutations=4)
    workdir.mkdir(parents=True, exist_ok=True)
    config = write(cfg, workdir / "config.yaml")
    from gapscope.stages import common

    models = list(cfg["models"])
    pairs = common.plan_pairs(models, cfg["languages"], cfg["modalities"], "all", cfg["models"])
    stores = sorted(
        {
            f"results/activations/{m}/{lang}/{mod}.zarr"
            for m, la, ma, lb, mb in pairs
            for lang, mod in ((la, ma), (lb, mb))
        }
    )
    targets = [f"results/similarity/{m}/{la}.{ma}~{lb}.{mb}.tsv" for m, la, ma, lb, mb in pairs]
    print(f"# demo: building {len(stores)} stores in {workdir} (once) ...", flush=True)
    snakemake(workdir, config, "--cores", "2", *stores)

    from gapscope.stages import similarity

    compute = []
    for _ in range(repeats):
        started = time.perf_counter()
        for m, la, ma, lb, mb in pairs:
            similarity.compare_stores(
                str(workdir / f"results/activations/{m}/{la}/{ma}.zarr"),
                str(workdir / f"results/activations/{m}/{lb}/{mb}.zarr"),
                model=m,
                adapter=cfg["models"][m]["adapter"],
                options=cfg["similarity"],
            )
        compute.append(time.perf_counter() - started)

    rows = []
    for scheduler in ("ilp", "greedy"):
        walls, startups = [], []
        for _ in range(repeats):
            shutil.rmtree(workdir / "results/similarity", ignore_errors=True)
            seconds, _, _ = snakemake(
                workdir,
                config,
                "--cores",
                "2",
                "-n",
                "--quiet",
                "all",
                "--scheduler",
                scheduler,
                *targets,
            )
            startups.append(seconds)
            seconds, _, _ = snakemake(
                workdir, config, "--cores", "2", "--scheduler", scheduler, *targets
            )
            walls.append(seconds)
        wall, startup = statistics.median(walls), statistics.median(startups)
        ideal = statistics.median(compute) / 2  # perfectly spread over 2 cores
        rows.append(
            {
                "scheduler": scheduler,
                "pairs": len(pairs),
                "wall_s": wall,
                "startup_dag_s": startup,
                "compute_s": statistics.median(compute),
                "ideal_2_cores_s": ideal,
                "overhead_per_job_s": max(0.0, (wall - startup - ideal) * 2 / len(pairs)),
            }
        )
    return rows


def table(rows: list[dict], floats: str = "{:.1f}") -> str:
    keys = list(rows[0])
    cells = [
        [floats.format(r[k]) if isinstance(r[k], float) else str(r[k]) for k in keys] for r in rows
    ]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--languages", type=int, default=4, help="demo languages (max 6)")
    parser.add_argument("--workdir", type=Path, default=None, help="demo workdir (kept)")
    parser.add_argument("--skip-demo", action="store_true", help="only the dry runs")
    parser.add_argument("--big-repeats", type=int, default=1, help="runs for the 102 languages")
    parser.add_argument(
        "--group-timeout", type=float, default=300, help="limit for a dry run with groups (s)"
    )
    args = parser.parse_args()
    print(
        f"# {platform.node()}: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
        f"Python {platform.python_version()}, median of {args.repeats}"
    )
    with tempfile.TemporaryDirectory(prefix="gapscope-wfbench-") as tmp:
        print("\nDry runs, median seconds (submissions = sbatch calls with the profile's groups;")
        print("local_s: --cores 2; slurm_s: profiles/slurm without groups; slurm_groups_s:")
        print("profiles/slurm as shipped, one run printing every job)")
        print(table(dry_runs(Path(tmp), args.repeats, args.big_repeats, args.group_timeout)))
        if not args.skip_demo:
            workdir = args.workdir or Path(tmp) / "demo"
            rows = demo_stage(workdir, args.languages, args.repeats)
            print("\nDemo similarity stage, --cores 2 (wall = snakemake run of every pair file;")
            print("startup_dag = dry run of the same targets; compute = in-process, 1 core)")
            print(table(rows))
            print(f"# load at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
