"""The released SeamlessM4T architecture with random weights, for the full-size extraction
benchmark (benchmarks/extract_full_size.py): same code path as the demo model, real size."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from gapscope.models.demo import save_checkpoint, seamless_config, train_tokenizer


def build_seamless_full_size(
    out_dir: Path,
    sentences: Iterable[str],
    lang_codes: Iterable[str],
    *,
    version: int = 2,
    seed: int = 0,
    device: str = "cpu",
) -> Path:
    """Build and save the released SeamlessM4T architecture with random weights, in bfloat16.

    transformers' config defaults are the released architectures (v2: seamless-m4t-v2-large,
    1024-d, 24 text and 24 speech-encoder layers, a 256,102-token vocabulary), so the saved
    model costs what the real one costs to load and to run; it is built on ``device`` (a GPU
    initialises 2.3 billion weights in seconds). The tokenizer is trained on ``sentences``:
    its ids fit the real vocabulary, and it cuts words into more pieces than the real one,
    so text batches are, if anything, longer.
    """
    import torch
    from transformers import SeamlessM4TModel, SeamlessM4Tv2Model

    tokenizer = train_tokenizer(sentences, lang_codes)
    config = seamless_config(tokenizer, version, {})
    torch.manual_seed(seed)
    model_cls = SeamlessM4Tv2Model if version == 2 else SeamlessM4TModel
    with torch.device(device):
        model = model_cls._from_config(config, dtype=torch.bfloat16).eval()
    return save_checkpoint(out_dir, model, tokenizer)
