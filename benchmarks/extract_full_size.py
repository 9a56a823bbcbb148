"""Full-size SeamlessM4T v2 extraction on a GPU, against the paper-setup target.

Builds the released seamless-m4t-v2-large architecture (transformers' config defaults,
2.3 billion weights) with random weights, saves it in bfloat16 and loads it back through
the pipeline's own loading path, so the model costs what the real one costs to load and to
run. Then, per modality, with torch on --threads CPU threads as a workflow job has, through
``extract_view`` as the workflow runs it (length-sorted batches of at most --batch-tokens /
--batch-seconds), --repeats times:
  * text: demo sentences joined in pairs (about 24 words, FLEURS length);
  * speech: noise clips of FLEURS-like durations (uniform in --seconds; with random
    weights the content does not change the cost);
  * baseline: one sentence per batch on the first --baseline sentences, same run;
  * job start: a fresh process that imports, creates its CUDA context, loads the model and
    encodes one sentence (what each workflow job pays before its corpus).
Prints sentences/s, speed-up, padding waste, peak GPU memory and job start, and projects
SeamlessM4T v2's share of the paper setup (30 languages x 350 sentences x 2 modalities, one
job per view, one GPU) against the 5-minute target. The paper config has four more models
(its random-init control, SONAR and its control, SALMONN); each adds its own share.
Figures only.

    .venv/bin/python benchmarks/extract_full_size.py --device cuda
    .venv/bin/python benchmarks/extract_full_size.py --tiny --sentences 16 --baseline 4
        (the tiny demo architecture on a CPU: checks the code path in seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
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
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository: gapscope and tests.builders


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
    from gapscope.models.demo import build_demo_model
    from tests.builders.seamless_full_size import build_seamless_full_size

    if tiny:
        return build_demo_model("seamless_m4t_v2_tiny", workdir / "ckpt")
    table = demo.sentences()
    texts = [text for column in table.columns for text in table[column]]
    return build_seamless_full_size(workdir / "ckpt", texts, ["eng"], device=device)


def load(checkpoint: Path, modality: str, device: str, dtype: str) -> tuple[object, float]:
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


def first_sentence(checkpoint: Path, modality: str, device: str, dtype: str, threads: int) -> None:
    """What a job does before its corpus: load the model and encode one sentence."""
    import torch

    torch.set_num_threads(threads)
    adapter, _ = load(checkpoint, modality, device, dtype)
    one = ["A first sentence."] if modality == "text" else [np.full(80_000, 0.01, np.float32)]
    adapter.encode(one, "eng_Latn", modality)
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def job_start_seconds(checkpoint: Path, modality: str, args: argparse.Namespace) -> float:
    """Median wall time of a fresh process from start to its first sentence encoded."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import extract_full_size as b;"
        f"from pathlib import Path; b.first_sentence(Path({str(checkpoint)!r}), "
        f"{modality!r}, {args.device!r}, {args.dtype!r}, {args.threads})"
    )
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def free_memory() -> None:
    """Free dropped models now (an adapter's hooks make a reference cycle that waits for gc)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def timed(
    adapter: object,
    manifest: pd.DataFrame,
    modality: str,
    workdir: Path,
    args: argparse.Namespace,
    max_batch: int,
) -> tuple[float, float, float]:
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


def measure(checkpoint: Path, modality: str, work: Path, args: argparse.Namespace) -> dict:
    """One row of the table: a modality's load, job start, speeds and memory."""
    manifest = corpus(args.sentences, modality, work, tuple(args.seconds))
    adapter, load_s = load(checkpoint, modality, args.device, args.dtype)
    timed(adapter, manifest.head(8), modality, work, args, max_batch=1)  # warm-up
    head = manifest.head(args.baseline)
    loops, batched, wastes, peaks = [], [], [], []
    for _ in range(args.repeats):
        loops.append(timed(adapter, head, modality, work, args, max_batch=1)[0])
        speed, waste, peak = timed(adapter, manifest, modality, work, args, max_batch=64)
        batched.append(speed)
        wastes.append(waste)
        peaks.append(peak)
    dtype = str(next(adapter.model.parameters()).dtype).removeprefix("torch.")
    del adapter
    free_memory()
    ratios = sorted(b / lo for b, lo in zip(batched, loops, strict=True))
    return {
        "modality": modality,
        "dtype": dtype,
        "sentences": args.sentences,
        "load s": load_s,
        "job start s": job_start_seconds(checkpoint, modality, args),
        "one-at-a-time sent/s": statistics.median(loops),
        "batched sent/s": statistics.median(batched),
        "speed-up": statistics.median(ratios),
        "speed-up range": f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
        "padding waste": statistics.median(wastes),
        "peak GPU MiB": max(peaks),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (rule: 2)")
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

    torch.set_num_threads(args.threads)
    single_threaded_blas()  # as run_view does
    with tempfile.TemporaryDirectory(prefix="gapscope-full-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        checkpoint = build(work, args.tiny, args.device)
        print(f"built and saved the checkpoint in {time.perf_counter() - start:.0f} s")
        free_memory()
        rows = [measure(checkpoint, modality, work, args) for modality in ("text", "speech")]
    views = PAPER_LANGUAGES * 2
    compute = sum(PAPER_LANGUAGES * PAPER_SENTENCES / r["batched sent/s"] for r in rows)
    starts = PAPER_LANGUAGES * sum(r["job start s"] for r in rows)
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(
        f"{'tiny demo' if args.tiny else 'full-size'} SeamlessM4T v2, random weights, "
        f"{rows[0]['dtype']} on {device}, {args.threads} CPU threads; median of "
        f"{args.repeats}; batches of at most {args.batch_tokens} tokens / "
        f"{args.batch_seconds:g} s; speech clips {args.seconds[0]:g}-{args.seconds[1]:g} s; "
        f"baseline on {args.baseline} sentences"
    )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(
        f"SeamlessM4T v2 in the paper setup ({PAPER_LANGUAGES} languages x {PAPER_SENTENCES} "
        f"sentences x 2 modalities, {views} jobs, one GPU): corpus {compute:.0f} s + job "
        f"starts {starts:.0f} s = {compute + starts:.0f} s one job at a time "
        f"(--resources gpu=1); about {compute + starts / SHARED_JOBS:.0f} s with "
        f"{SHARED_JOBS} jobs sharing the GPU (gpu={SHARED_JOBS}: starts overlap, GPU compute "
        f"does not); target for the whole setup {TARGET_SECONDS} s"
    )
    print(json.dumps({"rows": rows, "compute_s": compute, "job_starts_s": starts}))


if __name__ == "__main__":
    main()
