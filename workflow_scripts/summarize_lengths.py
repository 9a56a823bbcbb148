"""Rule summarize_lengths: pooled lengths per store and length ratios per language."""

import logging
from pathlib import Path

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)

from gapscope import gaps, html_tables
from gapscope.stages import common, summarize

common.start_log(snakemake.log[0])
out = snakemake.output
keys = [tuple(key) for key in snakemake.params.views]
lengths = summarize.read_lengths(dict(zip(keys, snakemake.input.stores, strict=True)))
taps = {model: tuple(t) for model, t in snakemake.params.taps.items()}
logging.info("read %d stores; length taps %s", len(lengths), taps)

stats = gaps.length_statistics(lengths)
ratios = gaps.length_ratios(lengths, taps)
ratio_groups = gaps.length_ratio_groups(ratios)
stats.to_csv(out.lengths, index=False, float_format="%.6g")
ratios.to_csv(out.ratios, index=False, float_format="%.6g")
ratio_groups.to_csv(out.ratio_groups, index=False, float_format="%.6g")
page = html_tables.html_page(
    "Sequence lengths: text tokens and speech frames",
    [
        (
            "Length ratios per resource group (mean and std over languages)",
            ratio_groups,
            "",
        ),
        (
            "Length ratios per language (mean and std over sentences)",
            ratios,
            "text_tokens: pooled text positions; speech_before / speech_after: pooled speech "
            "frames before / after length adaptation; ratios are per sentence.",
        ),
        ("Pooled length per store and tap", stats, "std: over sentences."),
    ],
    digits=2,
)
Path(out.html).write_text(page, encoding="utf-8")
