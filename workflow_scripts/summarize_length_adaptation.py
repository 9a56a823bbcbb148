"""Rule summarize_length_adaptation: cross-modal score before vs after length adaptation."""

import logging
from pathlib import Path

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)
import pandas as pd

from gapscope import figures, gaps, html_tables
from gapscope.stages import common

common.start_log(snakemake.log[0])
out = snakemake.output
metric = snakemake.params.metric
similarity = pd.read_parquet(snakemake.input.similarity)
pairs = {model: (tuple(b), tuple(a)) for model, (b, a) in snakemake.params.pairs.items()}
codes = sorted(set(similarity["lang_a"]) | set(similarity["lang_b"]))
info = gaps.language_info(codes)
groups = dict(zip(info["language"], info["group"], strict=True))

per_language, per_group = gaps.length_adaptation_effect(
    similarity, metric=metric, groups=groups, per_model=pairs, models=list(pairs), overall=True
)
per_language.to_csv(out.per_language, index=False, float_format="%.6g")
per_group.to_csv(out.per_group, index=False, float_format="%.6g")
note = (
    "Models whose adapter family declares no length-adaptation taps are left out."
    if pairs
    else "No model of this config declares length-adaptation taps."
)
page = html_tables.html_page(
    "Length adaptation: cross-modal score before vs after",
    [
        ("Per resource group (mean and std over languages)", per_group, note),
        ("Per language", per_language, ""),
    ],
    intro="delta = after - before; calibrated = score - null (shuffled sentence pairings). "
    f"Metric: {metric}.",
)
Path(out.html).write_text(page, encoding="utf-8")

stem = Path(out.svg).with_suffix("")
try:
    figures.plot_length_adaptation(per_language, stem, metric=metric)
except figures.NothingToPlot as err:
    logging.warning("length adaptation figure: %s", err)
    figures.placeholder_figure(stem, f"{err}. {note}")
