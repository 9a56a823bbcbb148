"""SONAR adapter speed on tiny real-architecture encoders (run in the SONAR environment).

Builds tiny SONAR asset cards (``tests.builders.sonar_tiny``: a SentencePiece tokenizer
trained on the demo sentences, text encoder, English speech encoder), loads them through
fairseq2 like real checkpoints, and times ``adapter.encode``: demo sentences in batches of
16, and 4-second waveforms in batches of 8, after a warm-up. Prints sentences/s (median of
``--repeats``). Tiny models measure the adapter's overhead, not a real model's compute.
Figures only; nothing here asserts a timing.

    .venv-sonar/bin/python benchmarks/sonar_adapter.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rate(encode, inputs: list, batch: int, repeats: int) -> float:
    """Median sentences/s of ``encode`` over ``inputs`` in batches of ``batch``."""
    encode(inputs[:batch])  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, len(inputs), batch):
            encode(inputs[i : i + batch])
        rates.append(len(inputs) / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from gapscope import languages
    from gapscope.corpus import demo
    from gapscope.models import ModelSpec, load_adapter
    from gapscope.models.base import single_threaded_blas
    from tests.builders.sonar_tiny import build_tiny_sonar

    torch.set_num_threads(args.threads)
    single_threaded_blas()  # as run_view does
    sentences = demo.sentences()["eng_Latn"].tolist()
    waves = [
        (0.1 * np.random.default_rng(i).standard_normal(16000 * 4)).astype(np.float32)
        for i in range(32)
    ]
    codes = [lang.sonar_text for lang in languages.load_table().values() if lang.sonar_text]
    with tempfile.TemporaryDirectory() as tmp:
        root = build_tiny_sonar(Path(tmp), sentences, codes, ["eng"])
        spec = ModelSpec(name="tiny", adapter="sonar", checkpoint=str(root))
        cpu = torch.device("cpu")
        text = load_adapter(spec, "text", cpu)
        speech = load_adapter(spec, "speech", cpu)
        text_rate = rate(lambda b: text.encode(b, "eng_Latn", "text"), sentences, 16, args.repeats)
        speech_rate = rate(lambda b: speech.encode(b, "eng_Latn", "speech"), waves, 8, args.repeats)
    print(
        f"tiny SONAR, {args.threads} thread(s), median of {args.repeats}: "
        f"text {text_rate:.0f} sent/s ({len(sentences)} demo sentences, batch 16), "
        f"speech {speech_rate:.0f} sent/s (32 x 4 s, batch 8)"
    )


if __name__ == "__main__":
    main()
