"""Extraction speed: length-batched extraction vs a one-sentence-at-a-time loop.

Builds the tiny demo SeamlessM4T v2 checkpoint, then for text (demo sentences of several
languages, repeated to the requested corpus size) and speech (espeak-ng synthesis) times,
alternating, --repeats times each:
  * baseline: ``gapscope.extract.extract_view`` with one sentence per batch (same model,
    pooling and store writes, so the ratio isolates batching);
  * gapscope: ``extract_view`` as the workflow runs it (sorted-by-length batches).
Prints sentences/s (medians), their ratio, padding waste, and the peak memory of a fresh
process extracting n and 4n sentences in chunks of 64 (it must not grow with the corpus:
stores are written chunk by chunk). ``--sweep`` adds the model-only throughput
(``adapter.encode``, sentences sorted by length, no store) per batch size: the ceiling of
what batching can gain on this machine.
Figures only; nothing here asserts a timing.

    .venv/bin/python benchmarks/extract.py [--sentences 256] [--repeats 3] [--sweep]
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

# memory runs use small chunks so that both corpus sizes span several of them
MEMORY_CHUNK = 64


def corpus(n: int, modality: str, workdir: Path) -> pd.DataFrame:
    """A manifest of n sentences (demo text cycled over languages; speech synthesised)."""
    from gapscope.corpus import demo, tts

    table = demo.sentences()
    langs = ["eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn"]
    texts = [table[lang].iloc[i % len(table)] for i in range(n) for lang in [langs[i % 4]]]
    audio = [""] * n
    if modality == "speech":
        import soundfile as sf

        cache: dict[str, str] = {}
        for i, (text, lang) in enumerate(zip(texts, [langs[i % 4] for i in range(n)], strict=True)):
            if text not in cache:
                path = workdir / f"s{len(cache)}.wav"
                sf.write(path, tts.synthesize(text, lang), 16000)
                cache[text] = str(path)
            audio[i] = cache[text]
    return pd.DataFrame(
        {
            "sentence_id": np.arange(n),
            "recording": 0,
            "text": texts,
            "audio": audio,
            "num_samples": -1,
        }
    )


def load(checkpoint: Path, modality: str):
    import torch

    from gapscope.models import ModelSpec, load_adapter

    spec = ModelSpec(name="tiny", adapter="seamless_m4t_v2", checkpoint=str(checkpoint))
    return load_adapter(spec, modality, torch.device("cpu"))


def time_extract(
    adapter,
    manifest: pd.DataFrame,
    modality: str,
    workdir: Path,
    max_batch: int = 64,
    chunk_size: int = 256,
    batch_seconds: float = 30,
    batch_tokens: int = 8192,
) -> tuple[float, float]:
    """Sentences/s of ``extract_view`` into a fresh store, and its padding waste."""
    from gapscope import extract
    from gapscope.stages import extract as extract_stage
    from gapscope.store import ViewWriter

    attrs = {
        "model": "tiny",
        "adapter": "seamless_m4t_v2",
        "checkpoint": "x",
        "revision": None,
        "init": "pretrained",
        "dtype": "float32",
        "language": "eng_Latn",
        "modality": modality,
        "pooling": "masked_mean",
        "taps": adapter.taps(modality),
    }
    budget = extract_stage.extract_budget(
        {"batch_tokens": batch_tokens, "batch_seconds": batch_seconds}, modality
    )
    writer = ViewWriter(
        workdir / f"b_{time.time_ns()}.zarr",
        manifest["sentence_id"].tolist(),
        attrs,
        chunk_size=chunk_size,
    )
    start = time.perf_counter()
    stats = extract.extract_view(
        adapter,
        manifest,
        writer,
        language="eng_Latn",
        modality=modality,
        budget=budget,
        max_batch=max_batch,
        progress=False,
    )
    return len(manifest) / (time.perf_counter() - start), stats["padding_waste"]


def sweep(adapter, manifest: pd.DataFrame, modality: str, sizes: list[int]) -> dict[int, float]:
    """Model-only sentences/s of ``adapter.encode`` per batch size (inputs sorted by length)."""
    from gapscope.extract import _lengths, _load_inputs

    inputs = _load_inputs(manifest, modality)
    lengths = _lengths(adapter, inputs, "eng_Latn", modality)
    inputs = [inputs[i] for i in np.argsort(lengths, kind="stable")]
    speeds = {}
    for size in sizes:
        adapter.encode(inputs[:size], "eng_Latn", modality)  # warm-up at this shape
        start = time.perf_counter()
        for i in range(0, len(inputs), size):
            adapter.encode(inputs[i : i + size], "eng_Latn", modality)
        speeds[size] = len(inputs) / (time.perf_counter() - start)
    return speeds


def own_peak_mib() -> float:
    """Peak RSS (MiB) of this process's own address space.

    ``VmHWM`` rather than ``ru_maxrss``: a child's ``ru_maxrss`` starts from its parent's
    resident size at fork (Linux carries it across exec), so a large benchmark parent would
    hide the child's real peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory(checkpoint: Path, n: int, modality: str, chunk_size: int = MEMORY_CHUNK) -> float:
    """Peak RSS (MiB) of a fresh process that extracts n sentences in chunks of chunk_size."""
    here = str(Path(__file__).parent)
    code = (
        "import sys, json, tempfile; from pathlib import Path;"
        f"sys.path.insert(0, {here!r}); import extract as b;"
        f"d = Path(tempfile.mkdtemp()); m = b.corpus({n}, {modality!r}, d);"
        f"a = b.load(Path({str(checkpoint)!r}), {modality!r});"
        f"b.time_extract(a, m, {modality!r}, d, chunk_size={chunk_size});"
        "print(json.dumps(b.own_peak_mib()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", action="store_true", help="model-only speed per batch size")
    parser.add_argument(
        "--batch-seconds", type=float, default=30, help="speech budget (CPU demo config: 30)"
    )
    args = parser.parse_args()

    import torch

    from gapscope.models.base import single_threaded_blas
    from gapscope.models.demo import build_demo_model

    torch.set_num_threads(2)
    single_threaded_blas()  # as run_view does: both the loop and the batched path get it
    work = Path(tempfile.mkdtemp(prefix="gapscope-bench-"))
    checkpoint = build_demo_model("seamless_m4t_v2_tiny", work / "ckpt")
    rows, sweeps = [], {}
    for modality in ("text", "speech"):
        manifest = corpus(args.sentences, modality, work)
        adapter = load(checkpoint, modality)
        time_extract(adapter, manifest.head(8), modality, work, max_batch=1)  # warm-up
        loops, batched, wastes = [], [], []
        for _ in range(args.repeats):
            loops.append(time_extract(adapter, manifest, modality, work, max_batch=1)[0])
            speed, waste = time_extract(
                adapter, manifest, modality, work, batch_seconds=args.batch_seconds
            )
            batched.append(speed)
            wastes.append(waste)
        ratios = sorted(b / lo for b, lo in zip(batched, loops, strict=True))
        if args.sweep:
            sizes = [1, 2, 4, 8, 16, 32, 64]
            sweeps[modality] = sweep(adapter, manifest, modality, sizes)
        small = peak_memory(checkpoint, args.sentences, modality)
        large = peak_memory(checkpoint, 4 * args.sentences, modality)
        rows.append(
            {
                "modality": modality,
                "sentences": args.sentences,
                "one-at-a-time sent/s": statistics.median(loops),
                "batched sent/s": statistics.median(batched),
                "speed-up": statistics.median(ratios),
                "speed-up range": f"{ratios[0]:.2f}-{ratios[-1]:.2f}",
                "padding waste": statistics.median(wastes),
                f"peak MiB (n={args.sentences})": small,
                f"peak MiB (n={4 * args.sentences})": large,
            }
        )
    print(
        f"tiny SeamlessM4T v2 on CPU ({torch.get_num_threads()} threads), "
        f"median of {args.repeats} runs (speed-up: median of per-repeat ratios); batches of "
        f"at most 8192 tokens / {args.batch_seconds:g} s of speech"
    )
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    if sweeps:
        table = pd.DataFrame(sweeps).rename_axis("batch size")
        print("\nmodel only (adapter.encode, sorted by length, no store), sentences/s:")
        print(table.to_string(float_format=lambda v: f"{v:.0f}"))
    print(json.dumps({"rows": rows, "sweep": {m: dict(v) for m, v in sweeps.items()}}))


if __name__ == "__main__":
    main()
