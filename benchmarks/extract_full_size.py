"""Full-size SeamlessM4T v2 extraction on a GPU, against the paper-setup target.

Builds the released seamless-m4t-v2-large architecture (transformers' config defaults,
2.3 billion weights) with random weights, saves it in bfloat16 and loads it back through
the pipeline's own loading path, so the model costs what the real one costs to load and to
run. Then, per modality, through ``extract_view`` as the workflow runs it (length-sorted
batches of at most --batch-tokens / --batch-seconds), --repeats times:
  * text: demo sentences joined in pairs (about 24 words, FLEURS length);
  * speech: noise clips of FLEURS-like durations (uniform in --seconds; with random
    weights the content does not change the cost);
  * baseline: one sentence per batch on the first --baseline sentences, same run.
Prints sentences/s, speed-up, padding waste, model load time and peak GPU memory, and
projects the paper setup (30 languages x 350 sentences x 2 modalities, one job per view,
each a fresh process that imports torch and transformers and loads its model, one GPU)
against the 5-minute target. Figures only.

    .venv/bin/python benchmarks/extract_full_size.py --device cuda
    .venv/bin/python benchmarks/extract_full_size.py --tiny --sentences 16 --baseline 4
        (the tiny demo architecture on a CPU: checks the code path in seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAPER_LANGUAGES = 30
PAPER_SENTENCES = 350
TARGET_SECONDS = 300
SHARED_JOBS = 4  # extraction jobs sharing one GPU in the second projection


def corpus(n: int, modality: str, workdir: Path, seconds: tuple[float, float]) -> pd.DataFrame:
    """n sentences: demo text joined in pairs, or noise clips of random duration."""
    import soundfile as sf

    from gapscope.corpus import demo

    pool = demo.sentences()["eng_Latn"].tolist()
    texts = [f"{pool[i % len(pool)]} {pool[(i + 1) % len(pool)]}" for i in range(n)]
    audio = [""] * n
    if modality == "speech":
        rng = np.random.default_rng(0)
        for i in range(n):
            samples = int(rng.uniform(*seconds) * 16_000)
            path = workdir / f"clip{i}.wav"
            sf.write(path, (0.1 * rng.standard_normal(samples)).astype(np.float32), 16_000)
            audio[i] = str(path)
    return pd.DataFrame(
        {"sentence_id": np.arange(n), "recording": 0, "text": texts, "audio": audio}
    )


def build(workdir: Path, tiny: bool, device: str) -> Path:
    """Save the checkpoint that the runs load (full size in bfloat16, or the tiny demo)."""
    from gapscope.corpus import demo
    from gapscope.models.demo import build_demo_model, build_seamless_full_size

    if tiny:
        return build_demo_model("seamless_m4t_v2_tiny", workdir / "ckpt")
    table = demo.sentences()
    texts = [text for column in table.columns for text in table[column]]
    return build_seamless_full_size(workdir / "ckpt", texts, ["eng"], device=device)


def load(checkpoint: Path, modality: str, device: str, dtype: str):
    """Load the adapter as a workflow job does; return it with the seconds it took."""
    import torch

    from gapscope.models import ModelSpec, load_adapter

    spec = ModelSpec(
        name="full", adapter="seamless_m4t_v2", checkpoint=str(checkpoint), dtype=dtype
    )
    start = time.perf_counter()
    adapter = load_adapter(spec, modality, torch.device(device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return adapter, time.perf_counter() - start


def startup_seconds(repeats: int) -> float:
    """Median wall time of a fresh process importing what an extraction job imports."""
    import subprocess
    import sys

    code = (
        "import torch, transformers, gapscope.extract, gapscope.models.seamless;"
        "from transformers import SeamlessM4Tv2ForSpeechToText, SeamlessM4Tv2ForTextToText"
    )
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def free_memory() -> None:
    """Free dropped models now (an adapter's hooks make a reference cycle that waits for gc)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def timed(adapter, manifest, modality, workdir, args, max_batch: int) -> tuple[float, float, float]:
    """(sentences/s, padding waste, peak GPU MiB) of one ``extract_view`` run."""
    import torch
    from extract import time_extract

    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    speed, waste = time_extract(
        adapter,
        manifest,
        modality,
        workdir,
        max_batch=max_batch,
        batch_seconds=args.batch_seconds,
        batch_tokens=args.batch_tokens,
    )
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    return speed, waste, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--sentences", type=int, default=PAPER_SENTENCES)
    parser.add_argument("--baseline", type=int, default=64, help="sentences of the loop")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, nargs=2, default=(5.0, 15.0))
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--batch-seconds", type=float, default=240)
    parser.add_argument("--tiny", action="store_true", help="tiny demo model (code check)")
    args = parser.parse_args()
    if args.tiny:
        args.device = "cpu" if args.device == "cuda" else args.device

    import torch

    from gapscope.models.base import single_threaded_blas

    single_threaded_blas()
    work = Path(tempfile.mkdtemp(prefix="gapscope-full-"))
    start = time.perf_counter()
    checkpoint = build(work, args.tiny, args.device)
    print(f"built and saved the checkpoint in {time.perf_counter() - start:.0f} s")
    rows = []
    for modality in ("text", "speech"):
        manifest = corpus(args.sentences, modality, work, tuple(args.seconds))
        loads = []
        for _ in range(args.repeats):
            adapter, seconds = load(checkpoint, modality, args.device, args.dtype)
            loads.append(seconds)
            if len(loads) < args.repeats:
                del adapter
                free_memory()
        timed(adapter, manifest.head(8), modality, work, args, max_batch=1)  # warm-up
        head = manifest.head(args.baseline)
        loops, batched, wastes, peaks = [], [], [], []
        for _ in range(args.repeats):
            loops.append(timed(adapter, head, modality, work, args, max_batch=1)[0])
            speed, waste, peak = timed(adapter, manifest, modality, work, args, max_batch=64)
            batched.append(speed)
            wastes.append(waste)
            peaks.append(peak)
        ratios = sorted(b / lo for b, lo in zip(batched, loops, strict=True))
        rows.append(
            {
                "modality": modality,
                "sentences": args.sentences,
                "load s": statistics.median(loads),
                "one-at-a-time sent/s": statistics.median(loops),
                "batched sent/s": statistics.median(batched),
                "speed-up": statistics.median(ratios),
                "speed-up range": f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
                "padding waste": statistics.median(wastes),
                "peak GPU MiB": max(peaks),
            }
        )
        dtype = str(next(adapter.model.parameters()).dtype).removeprefix("torch.")
        del adapter
        free_memory()
    views = PAPER_LANGUAGES * 2
    startup = startup_seconds(args.repeats)
    compute = sum(PAPER_LANGUAGES * PAPER_SENTENCES / r["batched sent/s"] for r in rows)
    loading = PAPER_LANGUAGES * sum(r["load s"] for r in rows) + views * startup
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(
        f"{'tiny demo' if args.tiny else 'full-size'} SeamlessM4T v2, random weights, "
        f"{dtype} on {device}; median of {args.repeats}; batches of at most "
        f"{args.batch_tokens} tokens / {args.batch_seconds:g} s; speech clips "
        f"{args.seconds[0]:g}-{args.seconds[1]:g} s; baseline on {args.baseline} sentences"
    )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(
        f"paper setup ({PAPER_LANGUAGES} languages x {PAPER_SENTENCES} sentences x 2 "
        f"modalities, {views} jobs on one GPU): extraction {compute:.0f} s + job start and "
        f"model loading {loading:.0f} s (imports {startup:.1f} s a job) = "
        f"{compute + loading:.0f} s one job at a time (--resources gpu=1); about "
        f"{compute + loading / SHARED_JOBS:.0f} s with {SHARED_JOBS} jobs sharing the GPU "
        f"(gpu={SHARED_JOBS}: start-up overlaps, GPU compute does not); target {TARGET_SECONDS} s"
    )
    summary = {"compute_s": compute, "loading_s": loading, "startup_s": startup}
    print(json.dumps({"rows": rows, **summary}))


if __name__ == "__main__":
    main()
