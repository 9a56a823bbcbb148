"""How far half precision moves pooled vectors and SVCCA, per model family (tiny models).

For each family's tiny checkpoint of the real architecture (random weights, built offline),
encodes the same sentences as text and as speech (espeak-ng) on the CPU in float32, then
loaded in bfloat16 and in float16 as the adapter loads them on a GPU, and prints per
family, modality and precision:

- the relative change of the pooled vectors, ||v_half - v_32|| / ||v_32||, median and max
  over sentences and taps;
- SVCCA between the float32 and the half-precision view of the same tap (1 = the same
  subspace), the lowest over taps;
- the change of the cross-modal SVCCA score (text vs speech at the same layer), the largest
  over layers.

Random tiny models say how the arithmetic of each architecture reacts to half precision,
not how a trained 7B model does. Never asserts anything.

    .venv/bin/python benchmarks/dtype_effect.py     # SeamlessM4T, speech-LLMs, SALMONN
    .venv-sonar/bin/python benchmarks/dtype_effect.py --families sonar
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gapscope.similarity import svcca  # noqa: E402

FAMILIES = ("seamless_m4t_v2", "seamless_m4t", "qwen2_audio", "voxtral", "audioflamingo3",
            "salmonn", "sonar")  # fmt: skip


def sentences(n: int) -> list[str]:
    """The first ``n`` English sentences of the demo corpus."""
    from gapscope.corpus import demo

    return [str(s) for s in demo.language_sentences("eng_Latn").tolist()[:n]]


def build(family: str, folder: Path, texts: list[str]):
    """(ModelSpec, language code) of the family's tiny checkpoint, built in ``folder``."""
    from gapscope.models import ModelSpec

    if family.startswith("seamless"):
        from gapscope import languages
        from gapscope.models.demo import build_seamless_tiny

        codes = [lang.seamless for lang in languages.load_table().values() if lang.seamless]
        version = 2 if family == "seamless_m4t_v2" else 1
        path = build_seamless_tiny(folder, texts, codes, version=version)
        return ModelSpec(name="tiny", adapter=family, checkpoint=str(path)), "eng_Latn"
    if family in ("qwen2_audio", "voxtral", "audioflamingo3"):
        from tests.builders.speech_llm_tiny import build_speech_llm_tiny

        path = build_speech_llm_tiny(family, folder, texts, window_s=30)
        return ModelSpec(name="tiny", adapter="speech_llm", checkpoint=str(path)), "eng_Latn"
    if family == "salmonn":
        from tests.builders.salmonn_tiny import build_salmonn_tiny

        path = build_salmonn_tiny(folder, texts)
        return ModelSpec(name="tiny", adapter="salmonn", checkpoint=str(path)), "eng_Latn"
    from tests.builders.sonar_tiny import build_tiny_sonar

    root = build_tiny_sonar(folder, texts, ["eng_Latn"], ["eng"])
    return ModelSpec(name="tiny", adapter="sonar", checkpoint=str(root)), "eng_Latn"


def encode(spec, language: str, modality: str, inputs: list, dtype: torch.dtype, batch: int):
    """{tap: (n, dim) float64} of the adapter loaded in ``dtype`` as it loads on a GPU.

    The adapters compute in float32 on a CPU whatever ``dtype`` says; here their
    ``resolve_dtype`` is made to answer ``dtype``, so every part is loaded (and kept in
    float32 where the adapter keeps it so) exactly as it would be on a GPU.
    """
    import importlib

    from gapscope.models import LOADERS, load_adapter

    module = importlib.import_module(LOADERS[spec.adapter].split(":")[0])
    original = module.resolve_dtype
    module.resolve_dtype = lambda _name, _device: dtype
    try:
        adapter = load_adapter(spec, modality, torch.device("cpu"))
        pooled = {}
        for start in range(0, len(inputs), batch):
            out = adapter.encode(inputs[start : start + batch], language, modality)
            for tap, vec in out.vectors.items():
                pooled.setdefault(tap, []).append(np.asarray(vec, dtype=np.float64))
    finally:
        module.resolve_dtype = original
    return {tap: np.concatenate(parts) for tap, parts in pooled.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES[:-1]))
    parser.add_argument("--sentences", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    from gapscope.corpus import tts

    torch.set_num_threads(2)
    texts = sentences(args.sentences)
    waves = [tts.synthesize(s, "eng_Latn") for s in texts]
    print("| family | modality | dtype | rel. change, median / max | SVCCA(fp32, half), min "
          "over taps | cross-modal SVCCA change, max over layers |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for family in args.families.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            spec, language = build(family, Path(tmp) / family, texts)
            views = {}
            for modality, inputs in (("text", texts), ("speech", waves)):
                for dtype in (torch.float32, torch.bfloat16, torch.float16):
                    views[modality, dtype] = encode(
                        spec, language, modality, inputs, dtype, args.batch
                    )
        for dtype in (torch.bfloat16, torch.float16):
            name = str(dtype).removeprefix("torch.")
            layers = [
                t for t in views["text", torch.float32] if t in views["speech", torch.float32]
            ]
            cross = [
                abs(
                    svcca(views["text", dtype][t], views["speech", dtype][t])
                    - svcca(views["text", torch.float32][t], views["speech", torch.float32][t])
                )
                for t in layers
                if t.startswith("layer")
            ]
            for modality in ("text", "speech"):
                full, half = views[modality, torch.float32], views[modality, dtype]
                rel = np.concatenate(
                    [np.linalg.norm(half[t] - full[t], axis=1) / np.linalg.norm(full[t], axis=1)
                     for t in full]
                )  # fmt: skip
                same = min(svcca(full[t], half[t]) for t in full)
                print(
                    f"| {family} | {modality} | {name} | {np.median(rel):.1e} / {rel.max():.1e} "
                    f"| {same:.4f} | {max(cross) if cross else float('nan'):.4f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
