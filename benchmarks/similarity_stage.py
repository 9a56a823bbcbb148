"""Benchmark: the similarity stage through Snakemake against today's per-pair computation.

Writes paper-shaped synthetic activation stores through the store API (SeamlessM4T v2 taps:
25 layers plus ``encoder_out`` for text, plus ``pre_adaptor``/``post_adaptor`` for speech;
N = 350 sentences, 1,024 dims, k about 145 at 99% variance), then, ``--repeats`` times:

- **baseline**: the similarity code of an earlier commit (``--baseline``, default 23d1fdb,
  read with ``git show``), ``compare_stores`` for every pair in one process with every
  thread pool at one thread (OMP/OPENBLAS/MKL_NUM_THREADS=1, as Snakemake runs a job):
  CPU seconds (process time). Limiting the pools from inside the process instead
  (threadpoolctl) leaves a second OpenBLAS pool, loaded later, spinning idle beside the
  work: that adds half again as much CPU time and no speed (same wall time); it is printed
  too, as "pools limited in-process", for comparison with figures measured that way;
- **stage**: ``snakemake --cores 2`` on the repository's Snakefile, restricted to the
  similarity rules, in one invocation, as a user runs it: CPU seconds of Snakemake and all
  its jobs (children's rusage), wall seconds, job count; then again in two invocations
  (first the prepared views, then the pairs and the table) so the CPU cost splits per view
  and per pair for the projection, with the peak resident memory of one job of each kind;

and prints medians, the ratio of the two per repeat, the largest differences between the two
tables, and the projection of both to ``configs/paper.yaml`` (its views x the CPU per view
plus its pairs x the CPU per pair). Options are the paper's: svcca, pwcca and cka, 20 null
permutations, held-out score. Never asserts anything.

    python benchmarks/similarity_stage.py                    # 6 languages, 3 repeats (~25 min)
    python benchmarks/similarity_stage.py --languages 2 --repeats 1 --layers 4   # a smoke run
    python benchmarks/similarity_stage.py --device cuda      # the stage on a GPU
"""

from __future__ import annotations

import argparse
import importlib.util
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

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gapscope.stages import common  # noqa: E402
from gapscope.store import ViewWriter  # noqa: E402

MODEL = "paper_synth"
LANGUAGES = ["eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "hin_Deva",
             "zho_Hans", "jpn_Jpan", "swh_Latn", "tur_Latn", "vie_Latn", "amh_Ethi"]  # fmt: skip
STAGE_RULES = ["similarity_view", "similarity_pair", "similarity_table"]
OPTIONS = {
    "metrics": ["svcca", "pwcca", "cka"],
    "svcca": {"variance": 0.99, "k": None},
    "cross_lingual": "all",
    "null_permutations": 20,
    "heldout": True,
    "bootstrap": 0,
    "seed": 0,
}
ATTRS = {
    "model": MODEL,
    "adapter": "seamless_m4t_v2",
    "checkpoint": "synthetic",
    "revision": None,
    "init": "pretrained",
    "dtype": "float32",
    "seed": 0,
    "options": {},
    "pooling": "masked_mean",
    "recording": "first",
    "device": "cpu",
}


def taps(modality: str, layers: int) -> list[str]:
    """The SeamlessM4T v2 taps of one modality with ``layers`` encoder layers."""
    names = [f"layer{i:02d}" for i in range(layers + 1)]
    return names + (["encoder_out"] if modality == "text" else ["pre_adaptor", "post_adaptor"])


def write_stores(root: Path, languages: list[str], n: int, dim: int, layers: int, seed: int):
    """Seeded views: meaning shared by every view (seen through each view's own noise), a
    latent per language and per modality, a decaying private part, noise and a mean offset."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n, 48))
    per_lang = {lang: rng.standard_normal((n, 32)) for lang in languages}
    per_mod = {mod: rng.standard_normal((n, 32)) for mod in ("text", "speech")}
    ids = np.arange(1000, 1000 + n)
    for li, lang in enumerate(languages):
        for mi, mod in enumerate(("text", "speech")):
            vrng = np.random.default_rng([seed, li, mi])
            data = {}
            for tap in taps(mod, layers):
                seen = shared + 0.6 * vrng.standard_normal(shared.shape)
                parts = (
                    (seen, 1.0),
                    (per_lang[lang], 0.6),
                    (per_mod[mod], 0.6),
                    (vrng.standard_normal((n, 192)), 0.8 * 0.985 ** np.arange(192)),
                )
                x = sum(
                    z @ (vrng.standard_normal((z.shape[1], dim)) * (np.reshape(s, (-1, 1))
                         / np.sqrt(z.shape[1])))
                    for z, s in parts
                )  # fmt: skip
                x += 0.02 * vrng.standard_normal((n, dim)) + 2.0 * vrng.standard_normal(dim)
                data[tap] = x.astype(np.float32)
            path = root / f"results/activations/{MODEL}/{lang}/{mod}.zarr"
            names = list(data)
            attrs = {**ATTRS, "language": lang, "modality": mod, "taps": names}
            writer = ViewWriter(path, ids, attrs, chunk_size=n)
            writer.write_chunk(0, data, {t: np.ones(n, dtype=np.int32) for t in names})
            writer.finalize(names)


def baseline_module(rev: str, folder: Path):
    """The similarity module of commit ``rev`` (git show), imported under its own name."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{rev}:gapscope/similarity.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    path = folder / f"similarity_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ONE_THREAD = {f"{name}_NUM_THREADS": "1" for name in ("OMP", "OPENBLAS", "MKL", "GOTO", "NUMEXPR")}


def run_baseline(root: Path, pairs, rev: str, one_thread: bool) -> tuple[float, pd.DataFrame]:
    """CPU seconds of the baseline over every pair (in a child process), and its table."""
    out = root / "baseline.parquet"
    here = str(Path(__file__).parent)
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import similarity_stage as b; "
        f"b.baseline_child({str(root)!r}, {pairs!r}, {rev!r}, {str(out)!r})"
    )
    env = {**os.environ, **ONE_THREAD} if one_thread else dict(os.environ)
    if not one_thread:
        for key in ONE_THREAD:
            env.pop(key, None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"baseline failed:\n{result.stderr[-4000:]}")
    return float(result.stdout.strip().splitlines()[-1]), pd.read_parquet(out)


def baseline_child(root: str, pairs, rev: str, out: str) -> None:
    """In a fresh process: run the baseline over every pair, print its CPU seconds."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # what an in-process limit reaches (pools loaded so far)
    import torch

    torch.set_num_threads(1)
    module, root = baseline_module(rev, Path(tempfile.mkdtemp())), Path(root)
    frames, started = [], time.process_time()
    for model, la, ma, lb, mb in pairs:
        frames.append(
            module.compare_stores(
                root / f"results/activations/{model}/{la}/{ma}.zarr",
                root / f"results/activations/{model}/{lb}/{mb}.zarr",
                model=model,
                adapter="seamless_m4t_v2",
                options=OPTIONS,
            )
        )
    cpu = time.process_time() - started
    pd.concat(frames, ignore_index=True).to_parquet(out)
    print(cpu)


def snakemake(root: Path, targets: list[str], cores: int) -> dict:
    """One Snakemake run: CPU s (itself + jobs), wall s, jobs run, peak RSS of one process
    (the largest of Snakemake and its jobs, from this run alone: wait4's rusage)."""
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(root), "--configfile", str(root / "config.yaml"),
        "--cores", str(cores), "--allowed-rules", *STAGE_RULES, "--", *targets,
    ]  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        log.seek(0)
        output = log.read()
    if process.returncode != 0:
        raise RuntimeError(f"snakemake failed:\n{output[-4000:]}")
    return {
        "cpu": usage.ru_utime + usage.ru_stime,
        "wall": wall,
        "jobs": len(re.findall(r"^Finished jobid", output, flags=re.M)),
        "peak_mib": usage.ru_maxrss / 1024,
    }


def clear(root: Path) -> None:
    """Remove the stage's outputs (the stores stay)."""
    shutil.rmtree(root / "results/similarity", ignore_errors=True)
    shutil.rmtree(root / "results/summary", ignore_errors=True)


def paper_shape() -> tuple[int, int]:
    """Views and pairs of configs/paper.yaml."""
    cfg = yaml.safe_load((REPO / "configs/paper.yaml").read_text())
    models, langs = cfg["models"], cfg["languages"]
    pairs = common.plan_pairs(list(models), langs, cfg["modalities"], "all", models)
    views = {(m, la, ma) for m, la, ma, _, _ in pairs} | {(m, lb, mb) for m, _, _, lb, mb in pairs}
    return len(views), len(pairs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--languages", type=int, default=6, help="languages (max 12)")
    parser.add_argument("--layers", type=int, default=24, help="encoder layers (taps - 2)")
    parser.add_argument("--n", type=int, default=350, help="sentences per view")
    parser.add_argument("--dim", type=int, default=1024, help="width of every tap")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side (median)")
    parser.add_argument("--cores", type=int, default=2, help="snakemake --cores")
    parser.add_argument(
        "--baseline", default="23d1fdb", help="commit of the baseline code ('' to skip it)"
    )
    parser.add_argument(
        "--metrics",
        default=",".join(OPTIONS["metrics"]),
        help="similarity.metrics of the stage, comma-separated (the baseline knows svcca, "
        "pwcca, cka and cka_debiased only)",
    )
    parser.add_argument("--device", default="cpu", help="similarity.device of the stage")
    parser.add_argument("--workdir", type=Path, help="keep the stores and results here")
    parser.add_argument(
        "--in-process-limit",
        action="store_true",
        help="also time the baseline with its pools limited in-process (spinning counted)",
    )
    args = parser.parse_args(argv)

    languages = LANGUAGES[: args.languages]
    tmp = tempfile.TemporaryDirectory(prefix="gapscope-simbench-")
    root = args.workdir or Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    write_stores(root, languages, args.n, args.dim, args.layers, seed=0)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["languages"] = languages
    cfg["models"] = {MODEL: {"adapter": "seamless_m4t_v2", "checkpoint": "synthetic"}}
    metrics = args.metrics.split(",")
    cfg["similarity"] = {**OPTIONS, "metrics": metrics, "device": args.device}
    if metrics != OPTIONS["metrics"] and args.baseline:
        parser.error("the baseline runs the paper's metrics: with --metrics, pass --baseline ''")
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    pairs = common.plan_pairs([MODEL], languages, ["text", "speech"], "all")
    views = sorted({(la, ma) for _, la, ma, _, _ in pairs} | {(lb, mb) for *_, lb, mb in pairs})
    view_targets = [f"results/similarity/{MODEL}/views/{lang}.npz" for lang in languages]
    print(
        f"# {len(views)} stores written in {time.perf_counter() - started:.0f} s; "
        f"{len(pairs)} pairs",
        file=sys.stderr,
    )
    rows = []
    for repeat in range(args.repeats):
        clear(root)
        whole = snakemake(root, ["results/summary/similarity.parquet"], args.cores)
        clear(root)
        first = snakemake(root, view_targets, args.cores)
        second = snakemake(root, ["results/summary/similarity.parquet"], args.cores)
        cpu_base, reference = (
            run_baseline(root, pairs, args.baseline, one_thread=True)
            if args.baseline
            else (float("nan"), None)
        )
        cpu_spin = (
            run_baseline(root, pairs, args.baseline, one_thread=False)[0]
            if args.in_process_limit
            else float("nan")
        )
        stage_cpu = whole["cpu"]
        rows.append(
            {
                "baseline_cpu": cpu_base,
                "spinning_cpu": cpu_spin,
                "stage_cpu": stage_cpu,
                "stage_wall": whole["wall"],
                "jobs": whole["jobs"],
                "view_cpu": first["cpu"] / len(views),
                "pair_cpu": second["cpu"] / len(pairs),
                "view_peak_mib": first["peak_mib"],
                "pair_peak_mib": second["peak_mib"],
                "ratio": cpu_base / stage_cpu if args.baseline else float("nan"),
            }
        )
        print(f"# repeat {repeat + 1}: {rows[-1]}", file=sys.stderr, flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    n_views, n_pairs = paper_shape()
    per_pair_base = med["baseline_cpu"] / len(pairs)
    paper_stage = n_views * med["view_cpu"] + n_pairs * med["pair_cpu"]
    print(
        f"# gapscope similarity stage benchmark; {platform.node()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; {len(languages)} languages, {len(views)} views, "
        f"{len(pairs)} pairs; N={args.n}, D={args.dim}, {args.layers + 2}-{args.layers + 3} "
        f"taps; {'+'.join(metrics)}, 20 permutations, held-out; median of {args.repeats}"
    )
    print(
        "| | baseline (per pair, 1 process, 1 thread) | stage (Snakemake, --cores "
        f"{args.cores}, device {args.device}) |"
    )
    print("|---|---|---|")
    print(f"| CPU s, all pairs | {med['baseline_cpu']:.1f} | {med['stage_cpu']:.1f} |")
    if args.in_process_limit:
        print(
            f"| CPU s, all pairs, pools limited in-process | {med['spinning_cpu']:.1f} "
            f"({med['spinning_cpu'] / med['stage_cpu']:.1f}x the stage) | - |"
        )
    print(
        f"| CPU s per pair | {per_pair_base:.2f} | {med['pair_cpu']:.2f} "
        f"(+ {med['view_cpu']:.2f} per view) |"
    )
    print(f"| wall s | - | {med['stage_wall']:.1f} |")
    print(f"| jobs | - | {med['jobs']:.0f} |")
    print(
        f"| peak RSS of one process | - | views {med['view_peak_mib']:.0f} MiB, pairs "
        f"{med['pair_peak_mib']:.0f} MiB |"
    )
    print(
        f"| configs/paper.yaml ({n_views} views, {n_pairs} pairs), CPU-hours | "
        f"{n_pairs * per_pair_base / 3600:.1f} | {paper_stage / 3600:.2f} |"
    )
    if reference is None:
        return
    ratios = sorted(r["ratio"] for r in rows)
    print(
        f"# CPU ratio baseline/stage: median {statistics.median(ratios):.1f}x "
        f"(range {ratios[0]:.1f}-{ratios[-1]:.1f}x)"
    )
    table = pd.read_parquet(root / "results/summary/similarity.parquet")
    key = ["comparison", "lang_a", "modality_a", "tap_a", "lang_b", "modality_b", "tap_b", "metric"]
    merged = table.merge(reference, on=key, suffixes=("", "_ref"), validate="one_to_one")
    diffs = {
        c: float(np.nanmax(np.abs(merged[c] - merged[f"{c}_ref"])))
        for c in ("score", "null_mean", "null_std", "heldout")
    }
    ref_cols = merged[["n_ref", "k_a_ref", "k_b_ref"]].to_numpy()
    same_k = bool((merged[["n", "k_a", "k_b"]].to_numpy() == ref_cols).all())
    print(f"# max |stage - baseline|: {diffs}; same n, k_a, k_b: {same_k}")


if __name__ == "__main__":
    main()
