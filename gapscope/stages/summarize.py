"""Glue of rules/summarize.smk: the summary metric, what each configured model declares about
length adaptation, and the pooled lengths read from stores (the summaries' targets are the
outputs of the summarize rules themselves: rules/common.smk reads them).
The tables themselves are computed by :mod:`gapscope.gaps` (pure functions of frames)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from gapscope import gaps
from gapscope.errors import ConfigError
from gapscope.gaps import LengthKey, LengthTaps, TapPair
from gapscope.models import FAMILIES


def summary_metric(config: Mapping) -> str:
    """The metric of the summaries: ``summarize.metric``, else the first computed metric."""
    metrics = list(config["similarity"]["metrics"])
    metric = (config.get("summarize") or {}).get("metric") or metrics[0]
    if metric not in metrics:
        raise ConfigError(
            f"summarize.metric: {metric!r} is not computed; similarity.metrics is {metrics}"
        )
    return metric


def length_adaptation_by_model(models: Mapping[str, Mapping]) -> dict[str, list[list[str]]]:
    """Per configured model whose family declares them, its [before, after] tap pairs."""
    out = {}
    for name, spec in models.items():
        pairs = length_adaptation_pairs(spec["adapter"])
        if pairs is not None:
            out[name] = [list(pair) for pair in pairs]
    return out


def length_taps_by_model(models: Mapping[str, Mapping]) -> dict[str, list[str | None]]:
    """Per configured model, its (text, speech before, speech after) length taps."""
    return {name: list(family_length_taps(spec["adapter"])) for name, spec in models.items()}


def read_lengths(paths: Mapping[LengthKey, str]) -> dict:
    """Read sentence ids and every tap's pooled lengths from finished stores."""
    from gapscope.store import open_view  # zarr: imported by the job, not at parse time

    out = {}
    for key, path in paths.items():
        view = open_view(path)
        out[key] = (view.sentence_ids, {tap: view.lengths(tap) for tap in view.taps})
    return out


def length_adaptation_pairs(adapter: str) -> tuple[TapPair, TapPair] | None:
    """The (before, after) cross-modal tap pairs an adapter family declares, or None."""
    family = FAMILIES.get(adapter)
    return None if family is None else family.length_adaptation


def family_length_taps(adapter: str) -> LengthTaps:
    """The taps whose lengths show an adapter's length adaptation (:func:`gaps.length_taps` of
    its family's declared pairs)."""
    return gaps.length_taps(length_adaptation_pairs(adapter))


def print_headline(gaps_csv: str | Path) -> None:
    """Print the headline table of a gaps CSV (no-op when it does not exist)."""
    path = Path(gaps_csv)
    if not path.exists():
        return
    import pandas as pd

    print(gaps.format_headline(pd.read_csv(path)))
