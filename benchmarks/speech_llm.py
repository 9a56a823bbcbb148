"""Speech-LLM adapter speed on the tiny architectures (Qwen2-Audio, Voxtral, AF3).

Builds each tiny checkpoint (10 s audio window, 3-layer LLM of width 32; see
``tests.builders.speech_llm_tiny``), synthesises the first ``--batch`` English demo
sentences with espeak-ng, and times ``adapter.encode`` on one batch of them, text and
speech, after a warm-up. Prints sentences/s (median of ``--repeats``). Tiny models measure
the adapter's own overhead (feature extraction, prompt building, pooling), not a real
model's compute. Figures only; nothing here asserts a timing.

    .venv/bin/python benchmarks/speech_llm.py [--batch 16] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # gapscope and tests.builders
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from gapscope.corpus import demo
    from gapscope.corpus.tts import synthesize
    from gapscope.models import ModelSpec, load_adapter
    from gapscope.models.base import single_threaded_blas
    from tests.builders.speech_llm_tiny import ARCHITECTURES, build_speech_llm_tiny

    torch.set_num_threads(args.threads)
    single_threaded_blas()  # as run_view does
    table = demo.sentences()
    texts = table["eng_Latn"].tolist()[: args.batch]
    waves = [synthesize(t, "eng_Latn") for t in texts]
    seconds = sum(len(w) for w in waves) / 16000
    corpus = [t for column in table.columns for t in table[column]]
    print(f"{len(texts)} sentences, {seconds:.1f} s of speech, {args.threads} thread(s)")
    print(f"{'model':<16}{'text sent/s':>14}{'speech sent/s':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ARCHITECTURES:
            path = build_speech_llm_tiny(arch, Path(tmp) / arch, corpus)
            spec = ModelSpec(name=arch, adapter="speech_llm", checkpoint=str(path))
            rates = []
            for modality, inputs in (("text", texts), ("speech", waves)):
                adapter = load_adapter(spec, modality, torch.device("cpu"))
                adapter.encode(inputs, "eng_Latn", modality)  # warm-up
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    adapter.encode(inputs, "eng_Latn", modality)
                    times.append(time.perf_counter() - start)
                rates.append(len(inputs) / statistics.median(times))
            print(f"{arch:<16}{rates[0]:>14.1f}{rates[1]:>16.1f}")


if __name__ == "__main__":
    main()
