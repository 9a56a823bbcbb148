"""Benchmark: gapscope.similarity.pairwise against the textbook per-pair SVCCA recipe.

Builds seeded synthetic views (languages x modalities, per tap): a latent shared by all views,
a latent per language, private structure + noise per view and a per-view mean offset. Times

- the plain reference: for every pair, centre both views, thin SVD of both, keep 99% of the
  variance, CCA through Σxx^-1/2 Σxy Σyy^-1/2 (numpy/scipy, float64). When timing every pair
  would take too long it is timed on a sample of pairs and extrapolated (median x pairs);
- ``pairwise`` over all pairs of every tap (one decomposition per view per tap).

Prints the reference time, the pairwise time, their ratio, the max abs difference over the
compared pairs, and the peak resident memory. With ``--repeats R`` every timed call runs R
times; each repeat r gives its own reference total and pairwise total (both measured in this
process, interleaved tap by tap, so load affects both alike) and the table reports the median
over repeats with the range of the ratio. Never asserts anything about timings.

    python benchmarks/similarity.py --quick          # seconds
    python benchmarks/similarity.py --small          # N=300, D=256, 60 views, 5 taps
    python benchmarks/similarity.py                  # N=1000, D=1024, 60 views, 25 taps
    python benchmarks/similarity.py --device cuda    # pairwise on the GPU
"""

from __future__ import annotations

import argparse
import itertools
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gapscope.similarity import pairwise  # noqa: E402

SETTINGS = {
    "full": {"languages": 30, "modalities": 2, "n": 1000, "dim": 1024, "taps": 25, "sample": 20},
    "small": {"languages": 30, "modalities": 2, "n": 300, "dim": 256, "taps": 5, "sample": 60},
    "quick": {"languages": 4, "modalities": 2, "n": 200, "dim": 128, "taps": 2, "sample": 0},
}


def make_views(
    seed: int,
    tap: int,
    languages: int,
    modalities: int,
    n: int,
    dim: int,
    shared_rank: int = 32,
    language_rank: int = 24,
    private_rank: int = 32,
    noise: float = 0.02,
) -> dict[str, np.ndarray]:
    """Seeded float32 views ``lang{i}/mod{j}`` for one tap."""
    rng = np.random.default_rng([seed, tap])
    shared = rng.standard_normal((n, shared_rank))
    per_lang = [rng.standard_normal((n, language_rank)) for _ in range(languages)]
    views = {}
    for lang, mod in itertools.product(range(languages), range(modalities)):
        a = rng.standard_normal((shared_rank, dim)) / np.sqrt(shared_rank)
        b = rng.standard_normal((language_rank, dim)) * (0.7 / np.sqrt(language_rank))
        decay = 0.5 / np.sqrt(private_rank) * 0.9 ** np.arange(private_rank)
        c = rng.standard_normal((private_rank, dim)) * decay[:, None]
        x = shared @ a + per_lang[lang] @ b + rng.standard_normal((n, private_rank)) @ c
        x += noise * rng.standard_normal((n, dim))
        x += 3.0 * rng.standard_normal(dim)  # per-view mean offset
        views[f"lang{lang:02d}/mod{mod}"] = x.astype(np.float32)
    return views


def reference_svcca(x: np.ndarray, y: np.ndarray, variance: float = 0.99) -> float:
    """Textbook SVCCA for one pair: SVD of both views, then CCA by inverse square roots."""

    def reduce(v: np.ndarray) -> np.ndarray:
        vc = v - v.mean(axis=0)
        u, s, _ = np.linalg.svd(vc, full_matrices=False)
        cum = np.cumsum(s**2)
        k = int(np.searchsorted(cum, variance * cum[-1])) + 1
        return u[:, :k] * s[:k]

    def inv_sqrt(c: np.ndarray) -> np.ndarray:
        w, v = scipy.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    a, b = reduce(np.asarray(x, np.float64)), reduce(np.asarray(y, np.float64))
    n = a.shape[0]
    sxx, syy, sxy = a.T @ a / (n - 1), b.T @ b / (n - 1), a.T @ b / (n - 1)
    rho = scipy.linalg.svdvals(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy))
    return float(np.mean(rho))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_true", help="N=300, D=256, 60 views, 5 taps")
    size.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--languages", type=int)
    p.add_argument("--modalities", type=int)
    p.add_argument("--n", type=int, help="sentences per view")
    p.add_argument("--dim", type=int, help="width of every view")
    p.add_argument("--taps", type=int)
    p.add_argument(
        "--reference-pairs", type=int, help="pairs timed with the reference recipe (0 = all pairs)"
    )
    p.add_argument("--metric", default="svcca", choices=["svcca", "pwcca", "cka", "cka_debiased"])
    p.add_argument("--null-permutations", type=int, default=0)
    p.add_argument("--heldout", action="store_true")
    p.add_argument("--bootstrap", type=int, default=0)
    p.add_argument("--device", default="cpu", help="device for pairwise: cpu or cuda")
    p.add_argument(
        "--dtype", default=None, help="pairwise dtype (default: float64 cpu, float32 cuda)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="timed runs of every call (median)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be >= 1")

    cfg = dict(SETTINGS["quick" if args.quick else "small" if args.small else "full"])
    for key in ("languages", "modalities", "n", "dim", "taps"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if args.reference_pairs is not None:
        cfg["sample"] = args.reference_pairs
    setting = "quick" if args.quick else "small" if args.small else "full"

    names = [
        f"lang{i:02d}/mod{j}" for i in range(cfg["languages"]) for j in range(cfg["modalities"])
    ]
    pairs = list(itertools.combinations(names, 2))
    total_pairs = len(pairs) * cfg["taps"]
    every = cfg["sample"] == 0 or cfg["sample"] >= total_pairs
    rng = np.random.default_rng(args.seed)
    chosen = (
        set(range(total_pairs))
        if every
        else set(rng.choice(total_pairs, size=cfg["sample"], replace=False).tolist())
    )

    # warm-up (library loading, thread pools) outside the timings
    warm = make_views(args.seed, 10**6, 2, 1, 50, 16)
    pairwise(warm, [tuple(warm)], metric=args.metric, device=args.device, dtype=args.dtype)

    t_gen = 0.0
    t_pair = [0.0] * args.repeats  # pairwise total per repeat
    ref_times: list[list[float]] = [[] for _ in range(args.repeats)]  # per repeat, per pair
    diffs: list[float] = []
    ks: list[int] = []
    scores: list[float] = []
    for tap in range(cfg["taps"]):
        t0 = time.perf_counter()
        views = make_views(
            args.seed, tap, cfg["languages"], cfg["modalities"], cfg["n"], cfg["dim"]
        )
        t_gen += time.perf_counter() - t0
        for r in range(args.repeats):
            t0 = time.perf_counter()
            table = pairwise(
                views,
                pairs,
                metric=args.metric,
                null_permutations=args.null_permutations,
                heldout=args.heldout,
                bootstrap=args.bootstrap,
                seed=args.seed,
                device=args.device,
                dtype=args.dtype,
            )
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t_tap = time.perf_counter() - t0
            t_pair[r] += t_tap
            print(
                f"tap {tap + 1}/{cfg['taps']} repeat {r + 1}: pairwise {t_tap:.2f} s",
                file=sys.stderr,
                flush=True,
            )
        scores.extend(table["score"].tolist())
        ks.extend(table["k_a"].tolist())
        for i, (a, b) in enumerate(pairs):
            if tap * len(pairs) + i not in chosen or args.metric != "svcca":
                continue
            for r in range(args.repeats):
                t0 = time.perf_counter()
                ref = reference_svcca(views[a], views[b])
                ref_times[r].append(time.perf_counter() - t0)
            diffs.append(abs(ref - table["score"].iloc[i]))
        del views

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    k_arr = np.array(ks)
    print(
        f"# gapscope similarity benchmark ({setting}); {platform.node()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print(
        f"# views={len(names)} ({cfg['languages']} languages x {cfg['modalities']} modalities),"
        f" N={cfg['n']}, D={cfg['dim']}, taps={cfg['taps']}, pairs={total_pairs}, "
        f"metric={args.metric}, null_permutations={args.null_permutations}, "
        f"heldout={args.heldout}, bootstrap={args.bootstrap}, repeats={args.repeats} "
        "(wall s: median over repeats; speed-up: median (range) of per-repeat ratios)"
    )
    print(
        f"# data generation {t_gen:.1f} s (not timed below); k per view: min {k_arr.min()}, "
        f"median {int(np.median(k_arr))}, max {k_arr.max()}; score range "
        f"{min(scores):.4f}..{max(scores):.4f}"
    )
    rows = []
    pair_total = statistics.median(t_pair)
    ratios: list[float] = []
    if ref_times[0]:
        if every:
            ref_runs = [sum(ts) for ts in ref_times]
            coverage = f"measured, all {total_pairs} pairs"
        else:
            ref_runs = [statistics.median(ts) * total_pairs for ts in ref_times]
            med = statistics.median(ref_runs) / total_pairs
            coverage = (
                f"extrapolated: median {med * 1e3:.1f} ms over {len(ref_times[0])} sampled "
                f"pairs x {total_pairs} pairs"
            )
        ratios = sorted(ref / pw for ref, pw in zip(ref_runs, t_pair, strict=True))
        rows.append(
            (
                "reference per pair (SVD both views + CCA by inverse sqrt)",
                coverage,
                statistics.median(ref_runs),
                "1.0x",
                "-",
            )
        )
    else:
        rows.append(("reference per pair", "not run (metric is not svcca)", float("nan"), "-", "-"))
    ratio = (
        f"{statistics.median(ratios):.0f}x ({ratios[0]:.0f}-{ratios[-1]:.0f}x)" if ratios else "-"
    )
    max_diff = f"{max(diffs):.1e} over {len(diffs)} pairs" if diffs else "-"
    rows.append(
        (
            f"pairwise (device={args.device}, dtype={args.dtype or 'default'})",
            f"measured, all {total_pairs} pairs",
            pair_total,
            ratio,
            max_diff,
        )
    )
    header = ("method", "coverage", "wall s", "speed-up", "max abs diff vs reference")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for method, coverage, secs, speed, diff in rows:
        print(f"| {method} | {coverage} | {secs:.1f} | {speed} | {diff} |")
    print(f"# peak resident memory (ru_maxrss): {peak_mib:.0f} MiB")
    if args.device.startswith("cuda") and torch.cuda.is_available():
        print(
            f"# peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB "
            f"({torch.cuda.get_device_name()})"
        )


if __name__ == "__main__":
    main()
