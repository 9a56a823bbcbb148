"""The adapter protocol every model family implements, and shared pooling helpers.

An adapter turns a batch of sentences (text strings or 16 kHz waveforms) into one pooled
float32 vector per sentence for every *tap* it declares. Pooling is a masked mean over the
positions named by a boolean mask, accumulated in float32 whatever the model's dtype.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from gapscope.models import ModelSpec

log = logging.getLogger(__name__)

MODALITIES = ("text", "speech")


def single_threaded_blas() -> None:
    """Keep numpy's and scipy's BLAS thread pools at one thread for the rest of the process.

    Extraction's heavy work is torch's. Feature extractors' small numpy matrix products
    otherwise wake OpenBLAS pools whose threads keep spinning afterwards and compete with
    torch's threads for the same cores: a tiny SeamlessM4T's one-utterance loop ran 3x
    slower on a 2-core machine. torch's own thread pool is not affected.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an environment built before threadpoolctl was required
        log.warning("threadpoolctl is not installed; BLAS thread pools left as they are")
        return
    threadpool_limits(1, user_api="blas")


class NonFiniteActivationError(ValueError):
    """A tap produced NaN or inf (for example an fp16 overflow)."""


@dataclass
class Pooled:
    """Pooled vectors of one batch: per tap, (batch, dim) float32 and pooled lengths."""

    vectors: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]


class Adapter(Protocol):
    """One model family behind one interface."""

    family: str
    sampling_rate: int

    def taps(self, modality: str) -> list[str]:
        """Ordered tap names this loaded model writes for a modality."""

    def text_lengths(self, sentences: Sequence[str], language: str) -> list[int]:
        """Token count per sentence, used to batch by length."""

    def encode(self, inputs: Sequence, language: str, modality: str) -> Pooled:
        """Run one batch (strings for text, float32 waveforms for speech) and pool every tap."""


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over positions where ``mask`` is true; (B, T, D), (B, T) -> (B, D) in float32.

    A row with no selected position raises: an empty pool is a bug upstream, never a zero.
    """
    mask = mask.to(hidden.device, torch.bool)
    if mask.shape != hidden.shape[:2]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match {tuple(hidden.shape[:2])}")
    counts = mask.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("a sentence has no position left to pool")
    weights = mask.to(torch.float32).unsqueeze(-1)
    total = (hidden.to(torch.float32) * weights).sum(dim=1)
    return total / counts.unsqueeze(-1).to(torch.float32)


def pool(tensors: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> Pooled:
    """Masked mean of every tap over its own mask, with the pooled position counts."""
    vectors, lengths = {}, {}
    for tap, hidden in tensors.items():
        vectors[tap] = masked_mean(hidden, masks[tap]).cpu().numpy()
        lengths[tap] = masks[tap].sum(dim=1).to(torch.int32).cpu().numpy()
    return Pooled(vectors, lengths)


class TapCapture:
    """Forward hooks that record tap tensors during one forward pass (``tensors``)."""

    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}
        self.handles: list = []

    def input_of(self, module: torch.nn.Module, name: str) -> None:
        """Record the hidden states a module receives (first argument or ``hidden_states``)."""

        def hook(_mod, args, kwargs):
            self.tensors[name] = args[0] if args else kwargs["hidden_states"]

        self.handles.append(module.register_forward_pre_hook(hook, with_kwargs=True))

    def output_of(self, module: torch.nn.Module, name: str) -> None:
        """Record a module's output (the first element when it returns a tuple)."""

        def hook(_mod, _args, out):
            self.tensors[name] = out[0] if isinstance(out, tuple) else out

        self.handles.append(module.register_forward_hook(hook))

    def remove(self) -> None:
        """Detach every hook."""
        for handle in self.handles:
            handle.remove()
        self.handles = []


def check_waves(waves: Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    """The waveforms as float32, each 1-D and non-empty (mono 16 kHz, as the corpus reads
    them); a stereo or empty array is refused instead of being flattened or padded."""
    out = []
    for i, wave in enumerate(waves):
        wave = np.asarray(wave)
        if wave.ndim != 1 or wave.size == 0 or not np.issubdtype(wave.dtype, np.floating):
            raise ValueError(
                f"{name}: input {i} has shape {wave.shape} and dtype {wave.dtype}; expected "
                "1-D non-empty floating-point mono audio at 16 kHz"
            )
        out.append(wave.astype(np.float32, copy=False))
    return out


def check_modality(loaded: str, asked: str | None) -> str:
    """The modality of an ``encode`` call: ``asked`` (default: the loaded one), which must match."""
    modality = asked or loaded
    if modality != loaded:
        raise ValueError(f"adapter loaded for {loaded}, asked for {modality}")
    return modality


@dataclass
class TokenizerOnly:
    """What AutoProcessor gives for a folder with a tokenizer and no processor files."""

    tokenizer: object
    feature_extractor: None = None
    chat_template: None = None


def load_processor(spec: ModelSpec, parts: Sequence[str] = ("tokenizer", "feature_extractor")):
    """The checkpoint's transformers processor, which must hold ``parts``.

    A folder with only tokenizer files gives a :class:`TokenizerOnly`. AutoProcessor falls
    back to an empty default tokenizer (its special tokens alone) when a folder has no
    tokenizer files; that counts as missing, so the error names the folder's gap instead of
    a language tag or an attribute much later.
    """
    from transformers import AutoProcessor, PreTrainedTokenizerBase

    processor = AutoProcessor.from_pretrained(
        spec.checkpoint, revision=spec.revision, trust_remote_code=spec.trust_remote_code
    )
    if isinstance(processor, PreTrainedTokenizerBase):
        processor = TokenizerOnly(processor)
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is not None and len(tokenizer) <= len(set(tokenizer.all_special_ids)):
        tokenizer = None
    found = {
        "tokenizer": tokenizer,
        "feature_extractor": getattr(processor, "feature_extractor", None),
    }
    missing = [part for part in parts if found.get(part) is None]
    if missing:
        raise ValueError(
            f"models.{spec.name}: {spec.checkpoint} has no {' and no '.join(missing)}; are "
            "its tokenizer files (tokenizer.json or a SentencePiece model) and its "
            "preprocessor_config.json there?"
        )
    return processor


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """Boolean (B, max_len) mask whose first ``lengths[b]`` positions are true."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.to(torch.long).unsqueeze(1)


def check_finite(pooled: Pooled, ids: Sequence[int], context: str) -> None:
    """Raise NonFiniteActivationError naming the sentence ids whose vectors are not finite."""
    for tap, vec in pooled.vectors.items():
        bad = ~np.isfinite(vec).all(axis=1)
        if bad.any():
            bad_ids = [int(i) for i, b in zip(ids, bad, strict=True) if b]
            raise NonFiniteActivationError(
                f"{context}: tap {tap!r} has NaN/inf for sentence id(s) {bad_ids} "
                "(fp16 overflow? try dtype: bfloat16 or float32)"
            )


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Torch dtype for a config name; half precision only on accelerators (CPU runs float32)."""
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name not in table:
        raise ValueError(f"unknown dtype {name!r}; expected one of {sorted(table)}")
    if device.type == "cpu":
        return torch.float32
    return table[name]


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
