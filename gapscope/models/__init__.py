"""Model adapters: one small adapter per model family behind one protocol.

This module is torch-free so that the similarity and summary stages can ask how a family's
taps pair up without importing a deep-learning stack; :func:`load_adapter` imports lazily.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

LAYER_TAP = re.compile(r"layer(\d+)")


@dataclass(frozen=True)
class ModelSpec:
    """What the config says about one model (DESIGN.md ``models:``)."""

    name: str
    adapter: str
    checkpoint: str
    revision: str | None = None
    init: str = "pretrained"
    dtype: str = "float32"
    trust_remote_code: bool = False
    seed: int = 0
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """Static facts about a family: extra taps, cross-modal pairs, length-adaptation pairs."""

    name: str
    modalities: tuple[str, ...]
    named_pairs: tuple[tuple[str, str], ...]
    length_adaptation: tuple[tuple[str, str], tuple[str, str]] | None


SEAMLESS_PAIRS = (("encoder_out", "pre_adaptor"), ("encoder_out", "post_adaptor"))
FAMILIES: dict[str, Family] = {
    name: Family(name, ("text", "speech"), SEAMLESS_PAIRS, SEAMLESS_PAIRS)
    for name in ("seamless_m4t_v2", "seamless_m4t")
}


def family(adapter: str) -> Family:
    """The family registered under ``adapter``, or a clear error listing the known ones."""
    if adapter not in FAMILIES:
        raise ValueError(f"unknown adapter {adapter!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[adapter]


def cross_modal_pairs(
    adapter: str, text_taps: Sequence[str], speech_taps: Sequence[str]
) -> list[tuple[str, str]]:
    """(text tap, speech tap) pairs compared across modalities.

    Layers meet the layer of the same index where both encoders have it; then the family's
    named pairs (e.g. the text encoder output against the speech side before and after the
    length adaptor) where both taps exist.
    """
    speech = set(speech_taps)
    pairs = [(t, t) for t in text_taps if LAYER_TAP.fullmatch(t) and t in speech]
    pairs += [(a, b) for a, b in family(adapter).named_pairs if a in text_taps and b in speech]
    return pairs


def load_adapter(spec: ModelSpec, modality: str, device=None):
    """Load the model of ``spec`` for one modality and return its adapter."""
    family(spec.adapter)
    if spec.adapter in ("seamless_m4t_v2", "seamless_m4t"):
        from gapscope.models.seamless import SeamlessAdapter

        return SeamlessAdapter(spec, modality, device)
    raise NotImplementedError(f"adapter {spec.adapter!r} has no loader yet")
