"""Extraction speed of the tiny SALMONN (real architecture, random weights) on this machine.

Builds the tiny checkpoint offline, loads the text and the speech adapter and times
``encode`` over N sentences (text: demo-like sentences; speech: 1-3 s synthetic clips) in
batches of --batch, after one warm-up batch. Prints sentences/s per modality (median of
--repeats). The tiny model's cost is dominated by the fixed 30 s Whisper window and BEATs,
so this says little about the 7B/13B models. Figures only; nothing asserts a timing.

    .venv/bin/python benchmarks/salmonn.py [--sentences 16] [--batch 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # gapscope and tests.builders
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "The red bus is late again.",
    "We bought fresh bread at the market this morning.",
    "Rain fell all night and the river rose.",
    "She plays the violin in a small orchestra.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from gapscope.models import ModelSpec, load_adapter
    from gapscope.models.base import single_threaded_blas
    from tests.builders.salmonn_tiny import build_salmonn_tiny

    single_threaded_blas()  # as run_view does

    texts = [SENTENCES[i % len(SENTENCES)] for i in range(args.sentences)]
    rng = np.random.default_rng(0)
    waves = [
        (0.1 * rng.standard_normal(int(16000 * (1 + 2 * rng.random())))).astype(np.float32)
        for _ in range(args.sentences)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = build_salmonn_tiny(Path(tmp) / "tiny", SENTENCES)
        spec = ModelSpec(name="tiny", adapter="salmonn", checkpoint=str(path))
        for modality, inputs in (("text", texts), ("speech", waves)):
            adapter = load_adapter(spec, modality, torch.device("cpu"))
            adapter.encode(inputs[: args.batch], "eng_Latn", modality)  # warm-up
            rates = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for i in range(0, len(inputs), args.batch):
                    adapter.encode(inputs[i : i + args.batch], "eng_Latn", modality)
                rates.append(len(inputs) / (time.perf_counter() - start))
            print(
                f"{modality:6s} {len(inputs)} sentences, batch {args.batch}, "
                f"{torch.get_num_threads()} threads: {statistics.median(rates):8.1f} sentences/s"
            )


if __name__ == "__main__":
    main()
