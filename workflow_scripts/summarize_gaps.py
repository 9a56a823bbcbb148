"""Rule summarize_gaps: gap tables per model and tap, per language and per resource group."""

from pathlib import Path

import _bootstrap  # noqa: F401  (puts the workflow's gapscope first on sys.path)
import pandas as pd

from gapscope import gaps, html_tables
from gapscope.stages import common

common.start_log(snakemake.log[0])
out = snakemake.output
metric = snakemake.params.metric
similarity = pd.read_parquet(snakemake.input.similarity)


def write(table: pd.DataFrame, path: str) -> pd.DataFrame:
    table.to_csv(path, index=False, float_format="%.6g")
    return table


gap = write(gaps.gap_table(similarity, metric=metric), out.gaps)
cross_modal = write(gaps.cross_modal_table(similarity, metric=metric), out.cross_modal)
cross_lingual = write(gaps.cross_lingual_table(similarity, metric=metric), out.cross_lingual)
per_language = write(gaps.modality_vs_language(similarity, metric=metric), out.modality_vs_language)
per_group = write(gaps.modality_vs_language_groups(per_language), out.modality_vs_language_groups)

calibration = (
    f"null = mean over shuffled sentence pairings; calibrated = score - null. Metric: {metric}."
)
pages = {
    out.gaps_html: (
        "Gap table: per model and tap",
        [("Means over pairs", gap, "std: sample std over pairs; n_*: pairs averaged.")],
    ),
    out.cross_modal_html: (
        "Cross-modal similarity per language",
        [("Text vs speech of the same language", cross_modal, "")],
    ),
    out.cross_lingual_html: (
        "Cross-lingual similarity of text and of speech",
        [
            (
                "Over language pairs (all pairs and English-centric)",
                cross_lingual,
                "mean/std: over pairs; k_min/k_max: range of kept dimensions.",
            )
        ],
    ),
    out.modality_vs_language_html: (
        "Modality gap vs language gap",
        [
            (
                "Per resource group (mean and std over languages)",
                per_group,
                "n_modality_gap_larger: languages whose cross-modal score is below their "
                "cross-lingual text score.",
            ),
            ("Per language", per_language, "cross_lingual_*: mean over the language's pairs."),
        ],
    ),
}
for path, (title, sections) in pages.items():
    Path(path).write_text(
        html_tables.html_page(title, sections, intro=calibration), encoding="utf-8"
    )
