"""A small BEATs audio encoder (Chen et al. 2022) for SALMONN, written for inference only.

BEATs is not in transformers, and the package that vendors it needs torchaudio for its
filterbank. This module holds the encoder; the Kaldi-compatible log-mel filterbank in plain
torch is :mod:`gapscope.models.fbank`. Parameter names follow Microsoft's BEATs checkpoints
(``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt``, a dict with ``cfg`` and ``model``),
so their ``model`` state dict loads strictly. The fine-tuned classifier (``predictor.*``) is
dropped because SALMONN reads features only.

Pipeline (what SALMONN's ``beats.extract_features(wav, feature_only=True)`` computes):

1. waveform in [-1, 1] x 2**15 -> Kaldi fbank: 128 mel bins, 25 ms Povey window, 10 ms
   shift, pre-emphasis 0.97, DC removal, 512-point FFT, power spectrum, log.
2. normalise: (fbank - 15.41663) / (2 x 6.55582).
3. 16 x 16 patches (time x mel) -> ``patch_embedding`` -> tokens in time-major order,
   8 mel patches per 160 ms step (so about 50 tokens per second), ``layer_norm``,
   ``post_extract_proj``.
4. Transformer encoder: convolutional position embedding (weight-normalised grouped conv),
   post-LN blocks with DeepNorm residual scaling and a gated relative position bias shared
   by all layers (computed from layer 0's table, gated per layer).

Attention is computed as softmax(q k^T / sqrt(d) + gated bias). The original subtracts the
row maximum times 32 first, a shift that softmax ignores; it only guards fp16 overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from gapscope.models.fbank import kaldi_fbank, n_fbank_frames

FBANK_MEAN = 15.41663
FBANK_STD = 6.55582
SAMPLE_RATE = 16_000


def beats_fbank(waveform: torch.Tensor) -> torch.Tensor:
    """BEATs' input features for one float waveform in [-1, 1]: (frames, 128), not normalised."""
    return kaldi_fbank(waveform.to(torch.float32) * 2**15)


def n_beats_tokens(n_samples: int, patch: int = 16, n_mels: int = 128) -> int:
    """Tokens BEATs makes from ``n_samples`` of 16 kHz audio (whole 16 x 16 patches)."""
    return (n_fbank_frames(n_samples) // patch) * (n_mels // patch)


# --------------------------------------------------------------------------- encoder
@dataclass
class BeatsConfig:
    """The architecture fields of a BEATs checkpoint's ``cfg`` (training-only fields ignored)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = False
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False

    @classmethod
    def from_dict(cls, cfg: dict) -> BeatsConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "tanh": torch.tanh}


class _PositionConv(nn.Module):
    """Grouped conv over time with weight normalisation along the kernel axis (dim 2)."""

    def __init__(self, dim: int, kernel: int, groups: int):
        super().__init__()
        self.kernel, self.groups = kernel, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel))
        self.bias = nn.Parameter(torch.zeros(dim))
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (kernel * dim)))
        with torch.no_grad():
            self.weight_g.copy_(self._norm())

    def _norm(self) -> torch.Tensor:
        return self.weight_v.pow(2).sum(dim=(0, 1), keepdim=True).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        weight = self.weight_v * (self.weight_g / self._norm())
        out = F.conv1d(x, weight, self.bias, padding=self.kernel // 2, groups=self.groups)
        if self.kernel % 2 == 0:
            out = out[:, :, :-1]
        return F.gelu(out)


class BeatsAttention(nn.Module):
    """Self-attention with BEATs' gated relative position bias."""

    def __init__(self, config: BeatsConfig, relative_bias: nn.Embedding | None):
        super().__init__()
        dim, heads = config.encoder_embed_dim, config.encoder_attention_heads
        if dim % heads:
            raise ValueError(f"encoder_embed_dim {dim} is not a multiple of {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.num_buckets, self.max_distance = config.num_buckets, config.max_distance
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.relative_attention_bias = relative_bias
        self.gru_rel_pos = config.gru_rel_pos
        if self.gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def _buckets(self, relative: torch.Tensor) -> torch.Tensor:
        """T5-style bidirectional log buckets of relative positions (key - query)."""
        half = self.num_buckets // 2
        buckets = (relative > 0).long() * half
        distance = relative.abs()
        exact = half // 2
        far = (
            exact
            + (
                torch.log(distance.clamp(min=1).float() / exact)
                / math.log(self.max_distance / exact)
                * (half - exact)
            ).long()
        )
        far = far.clamp(max=half - 1)
        return buckets + torch.where(distance < exact, distance, far)

    def position_bias(self, length: int) -> torch.Tensor:
        """(heads, length, length) bias from the shared table."""
        positions = torch.arange(length, device=self.relative_attention_bias.weight.device)
        relative = positions[None, :] - positions[:, None]
        return self.relative_attention_bias(self._buckets(relative)).permute(2, 0, 1)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, length, dim = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        mask = None
        if self.relative_attention_bias is not None:
            if bias is None:
                bias = self.position_bias(length)
            mask = bias.unsqueeze(0).to(q.dtype)
            if self.gru_rel_pos:
                gates = torch.sigmoid(
                    self.grep_linear(q).view(batch, self.heads, length, 2, 4).sum(-1)
                )
                gate_a, gate_b = gates[..., :1], gates[..., 1:]
                mask = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim)), bias


class BeatsLayer(nn.Module):
    def __init__(self, config: BeatsConfig, relative_bias: nn.Embedding | None):
        super().__init__()
        if config.activation_fn not in _ACTIVATIONS:
            raise ValueError(f"BEATs activation {config.activation_fn!r} is not supported")
        dim = config.encoder_embed_dim
        self.activation = _ACTIVATIONS[config.activation_fn]
        self.self_attn = BeatsAttention(config, relative_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, config.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(config.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = config.layer_norm_first
        self.alpha = (2 * config.encoder_layers) ** 0.25 if config.deep_norm else 1.0

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None):
        if self.layer_norm_first:
            attn, bias = self.self_attn(self.self_attn_layer_norm(x), bias)
            x = x + attn
            return x + self.fc2(self.activation(self.fc1(self.final_layer_norm(x)))), bias
        attn, bias = self.self_attn(x, bias)
        x = self.self_attn_layer_norm(x * self.alpha + attn)
        x = self.final_layer_norm(x * self.alpha + self.fc2(self.activation(self.fc1(x))))
        return x, bias


class BeatsTransformer(nn.Module):
    def __init__(self, config: BeatsConfig):
        super().__init__()
        dim = config.encoder_embed_dim
        self.pos_conv = nn.Sequential(_PositionConv(dim, config.conv_pos, config.conv_pos_groups))
        table = (
            nn.Embedding(config.num_buckets, config.encoder_attention_heads)
            if config.relative_position_embedding
            else None
        )
        # one table shared by every layer, as in the original (it appears under each layer's
        # name in the state dict)
        self.layers = nn.ModuleList(BeatsLayer(config, table) for _ in range(config.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = config.layer_norm_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        bias = None
        for layer in self.layers:
            x, bias = layer(x, bias)
        return self.layer_norm(x) if self.layer_norm_first else x


class BeatsEncoder(nn.Module):
    """BEATs feature extractor: waveform -> (tokens, encoder_embed_dim)."""

    def __init__(self, config: BeatsConfig):
        super().__init__()
        if config.layer_norm_first and config.deep_norm:
            raise ValueError("BEATs: deep_norm needs post-LN (layer_norm_first false)")
        self.config = config
        patch = config.input_patch_size
        self.patch_embedding = nn.Conv2d(
            1, config.embed_dim, kernel_size=patch, stride=patch, bias=config.conv_bias
        )
        self.layer_norm = nn.LayerNorm(config.embed_dim)
        self.post_extract_proj = (
            nn.Linear(config.embed_dim, config.encoder_embed_dim)
            if config.embed_dim != config.encoder_embed_dim
            else None
        )
        self.encoder = BeatsTransformer(config)

    @property
    def dim(self) -> int:
        return self.config.encoder_embed_dim

    def forward_fbank(self, fbank: torch.Tensor) -> torch.Tensor:
        """(B, frames, 128) raw Kaldi fbank -> (B, tokens, dim)."""
        x = ((fbank - FBANK_MEAN) / (2 * FBANK_STD)).unsqueeze(1)
        x = self.patch_embedding(x.to(self.patch_embedding.weight.dtype))
        x = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        x = self.layer_norm(x)
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        return self.encoder(x)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """One unpadded 16 kHz waveform (1-D, float in [-1, 1]) -> (1, tokens, dim)."""
        fbank = beats_fbank(waveform)
        if fbank.shape[0] < self.config.input_patch_size:
            raise ValueError(
                f"audio of {waveform.numel()} samples is too short for BEATs "
                f"(needs {self.config.input_patch_size} fbank frames, about 0.175 s)"
            )
        return self.forward_fbank(fbank.unsqueeze(0))


def load_beats_state_dict(encoder: BeatsEncoder, state_dict: dict, source: str) -> None:
    """Load a BEATs checkpoint's ``model`` dict strictly, ignoring the classifier head."""
    state = {k: v for k, v in state_dict.items() if not k.startswith("predictor")}
    result = encoder.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{source}: BEATs weights do not fit the architecture of its cfg; "
            f"missing {sorted(result.missing_keys)[:8]}, "
            f"unexpected {sorted(result.unexpected_keys)[:8]}"
        )
