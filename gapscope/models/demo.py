"""Tiny, randomly initialised checkpoints of real architectures, built offline.

The demo and the tests cannot download weights, so they build a SeamlessM4T v2 (or v1)
model of the real architecture from a small config with a fixed seed, train a BPE
tokenizer on the demo sentences, and save both with ``save_pretrained``. The pipeline then
loads the folder through exactly the code path that loads ``facebook/seamless-m4t-v2-large``.
The weights are random: numbers computed from these models say nothing about trained ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where a model is built: the workflow reads DEMO_MODELS
    import torch

DEMO_MODELS: dict[str, int] = {"seamless_m4t_v2_tiny": 2, "seamless_m4t_tiny": 1}
"""The demo checkpoints the workflow builds itself (rule demo_model): name -> version."""

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>"]

TINY_SEAMLESS = dict(
    hidden_size=64,
    encoder_layers=4,
    encoder_ffn_dim=128,
    encoder_attention_heads=4,
    decoder_layers=1,
    decoder_ffn_dim=128,
    decoder_attention_heads=4,
    speech_encoder_layers=4,
    speech_encoder_attention_heads=4,
    speech_encoder_intermediate_size=128,
    num_adapter_layers=1,
    adaptor_kernel_size=8,
    adaptor_stride=8,
    feature_projection_input_dim=160,
    t2u_encoder_layers=1,
    t2u_decoder_layers=1,
    t2u_encoder_ffn_dim=64,
    t2u_decoder_ffn_dim=64,
    t2u_encoder_attention_heads=2,
    t2u_decoder_attention_heads=2,
    t2u_vocab_size=50,
    char_vocab_size=50,
    t2u_variance_predictor_embed_dim=64,
    t2u_variance_predictor_hidden_dim=32,
    unit_hifi_gan_vocab_size=50,
    unit_embed_dim=32,
    upsample_initial_channel=32,  # must be >= 2**len(upsample_rates)
    max_position_embeddings=512,
    t2u_max_position_embeddings=256,
    vocoder_num_langs=4,
    vocoder_num_spkrs=2,
    lang_embed_dim=8,
    spkr_embed_dim=8,
)


def train_tokenizer(sentences: Iterable[str], lang_codes: Iterable[str], vocab_size: int = 1500):
    """A SeamlessM4T tokenizer whose BPE vocabulary is trained on ``sentences``.

    Language tags (``__eng__``) are added as special tokens so the tokenizer behaves like
    the real one: ``[__xxx__, pieces..., </s>]``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import SeamlessM4TTokenizer

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False
    )
    bpe.train_from_iterator(list(sentences), trainer)
    model = json.loads(bpe.to_str())["model"]
    tags = [f"__{code}__" for code in sorted(set(lang_codes))]
    return SeamlessM4TTokenizer(
        vocab=model["vocab"],
        merges=[tuple(m) for m in model["merges"]],
        src_lang="eng",
        tgt_lang="eng",
        additional_special_tokens=tags,
    )


def _perturb_norms(model: torch.nn.Module) -> None:
    """Give LayerNorms non-trivial scales and biases, as trained models have.

    Default init (weight 1, bias 0) maps a zero vector to zero and would hide padding leaks.
    """
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm) and module.elementwise_affine:
                module.weight.add_(0.1 * torch.randn_like(module.weight))
                module.bias.add_(0.1 * torch.randn_like(module.bias))


def seamless_config(tokenizer: Any, version: int, architecture: dict) -> Any:
    """A SeamlessM4T v2 (or v1) config whose special-token ids are the tokenizer's."""
    from transformers import SeamlessM4TConfig, SeamlessM4Tv2Config

    config_cls = SeamlessM4Tv2Config if version == 2 else SeamlessM4TConfig
    return config_cls(
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **architecture,
    )


def save_checkpoint(out_dir: Path, model: torch.nn.Module, tokenizer: Any) -> Path:
    """Save a SeamlessM4T model and its processor (the tokenizer, a default feature
    extractor) with ``save_pretrained``."""
    from transformers import SeamlessM4TFeatureExtractor, SeamlessM4TProcessor

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor = SeamlessM4TProcessor(
        feature_extractor=SeamlessM4TFeatureExtractor(), tokenizer=tokenizer
    )
    processor.save_pretrained(out_dir)
    return out_dir


def build_seamless_tiny(
    out_dir: Path,
    sentences: Iterable[str],
    lang_codes: Iterable[str],
    *,
    version: int = 2,
    seed: int = 0,
) -> Path:
    """Build, seed and save a tiny SeamlessM4T v2 (or v1) model plus its processor."""
    import torch
    from transformers import SeamlessM4TModel, SeamlessM4Tv2Model

    tokenizer = train_tokenizer(sentences, lang_codes)
    config = seamless_config(tokenizer, version, {**TINY_SEAMLESS, "vocab_size": len(tokenizer)})
    torch.manual_seed(seed)
    model = (SeamlessM4Tv2Model if version == 2 else SeamlessM4TModel)(config).eval()
    _perturb_norms(model)
    return save_checkpoint(out_dir, model, tokenizer)


def build_demo_model(name: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build the demo checkpoint ``name`` (one of :data:`DEMO_MODELS`).

    The tokenizer is trained on every demo sentence and knows the language tag of every
    SeamlessM4T language in gapscope's table.
    """
    from gapscope import languages
    from gapscope.corpus import demo as demo_corpus

    if name not in DEMO_MODELS:
        raise ValueError(f"unknown demo model {name!r}; known: {sorted(DEMO_MODELS)}")
    table = demo_corpus.sentences()
    texts = [text for column in table.columns for text in table[column]]
    codes = [lang.seamless for lang in languages.load_table().values() if lang.seamless]
    return build_seamless_tiny(Path(out_dir), texts, codes, version=DEMO_MODELS[name], seed=seed)
