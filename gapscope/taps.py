"""Tap vocabulary: how every stage names, pairs, labels and orders the places activations
are read from (one definition, used by the models, the similarity stage, tables and figures).

A tap is a layer output ``layerNN`` (``layer00`` = the embeddings) or a named tap of a
family (``encoder_out``, ``pre_adaptor``, ``post_adaptor``, ``pooled``, ...). A *tap label*
names where a comparison was taken: ``tap_a`` when both sides share the tap, else
``"<text tap>~<speech tap>"`` (``~`` is ASCII, safe in CSV, file names and shells).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

LAYER_TAP = re.compile(r"layer(\d+)")
NAMED_TAP_ORDER: tuple[str, ...] = (
    "encoder_out",
    "pre_adaptor",
    "post_adaptor",
    "pooled",
    "qformer_in",
    "qformer_out",
)
TAP_SEPARATOR = "~"


def layer_index(tap: str) -> int | None:
    """Layer number of a ``layerNN`` tap, else None."""
    match = LAYER_TAP.fullmatch(tap)
    return int(match.group(1)) if match else None


def is_layer(tap: str) -> bool:
    """Whether ``tap`` is a ``layerNN`` tap."""
    return LAYER_TAP.fullmatch(tap) is not None


def last_layer(taps: Iterable[str]) -> str | None:
    """The deepest ``layerNN`` tap among ``taps``, None when there is none."""
    layered = [(index, tap) for tap in taps if (index := layer_index(tap)) is not None]
    return max(layered)[1] if layered else None


def tap_label(tap_a: str, tap_b: str) -> str:
    """Label of a tap pair: ``tap_a`` if both sides are equal, else ``"tap_a~tap_b"``."""
    return tap_a if tap_a == tap_b else f"{tap_a}{TAP_SEPARATOR}{tap_b}"


def _single_tap_key(tap: str) -> tuple[int, int, str]:
    layer = layer_index(tap)
    if layer is not None:
        return (0, layer, "")
    if tap in NAMED_TAP_ORDER:
        return (1, NAMED_TAP_ORDER.index(tap), "")
    return (2, 0, tap)


def tap_sort_key(tap: str) -> tuple[int | str, ...]:
    """Sort key: layers numerically, then named taps in :data:`NAMED_TAP_ORDER`, then
    unknown names alphabetically. A pair label ``a~b`` sorts right after ``a`` by ``b``."""
    first, _, second = tap.partition(TAP_SEPARATOR)
    tail = _single_tap_key(second) if second else (-1, 0, "")
    return (*_single_tap_key(first), *tail)
