"""A tiny SALMONN of the real architecture, built offline and saved in the loader's layout.

``build_salmonn_tiny(out_dir, sentences)`` writes::

    out_dir/
      whisper/              WhisperModel + WhisperFeatureExtractor (save_pretrained; the
                            extractor keeps the real 80 mel bins and 30 s window, and the
                            encoder the real 1500 frames, so the 17-frame / 88-window
                            geometry is the real one)
      beats.pt              {"cfg": ..., "model": ...} like Microsoft's BEATs checkpoints
      llm/                  LlamaForCausalLM + a BPE tokenizer trained on ``sentences``
      salmonn.pth           {"model": official-key state dict, "config": ..., "epoch": 0},
                            written through :func:`to_official_state_dict` plus the buffers
                            the official training code saves (``position_ids``, ``inv_freq``)
      salmonn_options.json  relative component paths and the tiny Q-Former sizes

so that ``ModelSpec(adapter="salmonn", checkpoint=str(out_dir))`` loads through exactly the
path that loads the released checkpoints. LayerNorms and LoRA B matrices get non-trivial
random values (defaults would hide padding leaks and make LoRA a no-op). The weights are
random: numbers computed from this model say nothing about SALMONN.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch

TINY_QFORMER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 64,
}
TINY_WHISPER = dict(
    d_model=32,
    encoder_layers=2,
    encoder_attention_heads=4,
    encoder_ffn_dim=64,
    decoder_layers=1,
    decoder_attention_heads=4,
    decoder_ffn_dim=64,
    num_mel_bins=80,
    max_source_positions=1500,
    max_target_positions=32,
    vocab_size=64,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    decoder_start_token_id=1,
)
TINY_BEATS = dict(
    encoder_layers=2,
    encoder_embed_dim=32,
    encoder_ffn_embed_dim=64,
    encoder_attention_heads=4,
    embed_dim=24,
    conv_pos=16,
    conv_pos_groups=4,
    relative_position_embedding=True,
    gru_rel_pos=True,
    num_buckets=32,
    max_distance=64,
    deep_norm=True,
)
TINY_LLAMA = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=512,
)


def train_llama_tokenizer(sentences: Iterable[str], vocab_size: int = 600):
    """A LLaMA-like tokenizer (BPE, SentencePiece-style word starts, <s> </s> <unk>)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from gapscope.models.salmonn import ASR_PROMPT, PROMPT_TEMPLATE

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    bpe.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False
    )
    bpe.train_from_iterator([PROMPT_TEMPLATE.format(ASR_PROMPT), *sentences], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _perturb(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.LayerNorm) and sub.elementwise_affine:
                sub.weight.add_(0.1 * torch.randn_like(sub.weight))
                sub.bias.add_(0.1 * torch.randn_like(sub.bias))
        for name, param in module.named_parameters():
            if ".lora_B." in name:
                param.normal_(std=0.05)


def build_salmonn_tiny(out_dir: str | Path, sentences: Iterable[str], *, seed: int = 0) -> Path:
    """Build, seed and save a tiny SALMONN (see the module docstring); return ``out_dir``."""
    from transformers import (
        Blip2QFormerConfig,
        LlamaConfig,
        LlamaForCausalLM,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )

    from gapscope.models.beats import BeatsConfig, BeatsEncoder
    from gapscope.models.salmonn import (
        OPTIONS_FILE,
        SalmonnModel,
        to_official_state_dict,
        trained_state_dict,
        wrap_lora,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    whisper = WhisperModel(WhisperConfig(**TINY_WHISPER)).eval()
    _perturb(whisper)
    whisper.save_pretrained(out / "whisper")
    WhisperFeatureExtractor().save_pretrained(out / "whisper")

    beats_config = BeatsConfig.from_dict(TINY_BEATS)
    beats = BeatsEncoder(beats_config).eval()
    _perturb(beats)
    torch.save({"cfg": beats_config.to_dict(), "model": beats.state_dict()}, out / "beats.pt")

    tokenizer = train_llama_tokenizer(sentences)
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **TINY_LLAMA,
    )
    causal = LlamaForCausalLM(llama_config).eval()
    _perturb(causal)
    causal.save_pretrained(out / "llm")
    tokenizer.save_pretrained(out / "llm")

    qformer_config = Blip2QFormerConfig(
        **TINY_QFORMER,
        encoder_hidden_size=TINY_WHISPER["d_model"] + TINY_BEATS["encoder_embed_dim"],
        cross_attention_frequency=1,
        use_qformer_text_input=False,
    )
    model = SalmonnModel(
        whisper.encoder,
        beats,
        qformer_config,
        wrap_lora(causal.model),
        whisper_dim=TINY_WHISPER["d_model"],
        beats_dim=TINY_BEATS["encoder_embed_dim"],
    )
    _perturb(model)
    official = to_official_state_dict(trained_state_dict(model))
    # buffers the official training code's state dict carries (dropped by the loader)
    official["speech_Qformer.bert.embeddings.position_ids"] = torch.arange(512).unsqueeze(0)
    head_dim = TINY_LLAMA["head_dim"]
    for i in range(TINY_LLAMA["num_hidden_layers"]):
        key = f"llama_model.base_model.model.model.layers.{i}.self_attn.rotary_emb.inv_freq"
        official[key] = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    official = {k: v.detach().clone().contiguous() for k, v in official.items()}
    torch.save(
        {"model": official, "config": {"model": {"lora_rank": 8, "lora_alpha": 32}}, "epoch": 0},
        out / "salmonn.pth",
    )
    options = {"whisper": "whisper", "beats": "beats.pt", "llm": "llm", "qformer": TINY_QFORMER}
    (out / OPTIONS_FILE).write_text(json.dumps(options, indent=2) + "\n")
    return out
