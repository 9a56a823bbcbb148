"""Summaries of the similarity table and the stores: gap tables, figures, report inputs.

Tables go to results/summary/ (CSV, plus an HTML rendering for the report), figures to
results/figures/ (SVG + PNG). Every table and figure is marked for `snakemake --report`.
"""

import hashlib
import json

# the stage module `summarize` (gapscope.stages.summarize) is imported in rules/common.smk
SUMMARY = config["summarize"]  # validated: the schema's defaults are filled in
SUMMARY_METRIC = summarize.summary_metric(config)  # checked with the config (common.smk)
# (model, language, modality) of every store, for the lengths tables
STORE_VIEWS = [[m, lang, mod] for m in MODELS for lang in LANGUAGES for mod in MODALITIES]
# the config page is rebuilt whenever the validated config changes
CONFIG_DIGEST = hashlib.sha256(
    json.dumps(config, sort_keys=True, default=str).encode()
).hexdigest()[:16]


rule summarize_gaps:
    """Gap tables from the similarity table: per model and tap, per language, per group."""
    input:
        similarity="results/summary/similarity.parquet",
    output:
        gaps=report(
            "results/summary/gaps.csv",
            caption="report/gaps.rst",
            category="Tables",
            subcategory="Gaps",
            labels={"table": "gaps", "format": "csv"},
        ),
        gaps_html=report(
            "results/summary/gaps.html",
            caption="report/gaps.rst",
            category="Tables",
            subcategory="Gaps",
            labels={"table": "gaps", "format": "html"},
        ),
        cross_modal=report(
            "results/summary/cross_modal.csv",
            caption="report/cross_modal.rst",
            category="Tables",
            subcategory="Cross-modal",
            labels={"table": "cross_modal", "format": "csv"},
        ),
        cross_modal_html=report(
            "results/summary/cross_modal.html",
            caption="report/cross_modal.rst",
            category="Tables",
            subcategory="Cross-modal",
            labels={"table": "cross_modal", "format": "html"},
        ),
        cross_lingual=report(
            "results/summary/cross_lingual.csv",
            caption="report/cross_lingual.rst",
            category="Tables",
            subcategory="Cross-lingual",
            labels={"table": "cross_lingual", "format": "csv"},
        ),
        cross_lingual_html=report(
            "results/summary/cross_lingual.html",
            caption="report/cross_lingual.rst",
            category="Tables",
            subcategory="Cross-lingual",
            labels={"table": "cross_lingual", "format": "html"},
        ),
        modality_vs_language=report(
            "results/summary/modality_vs_language.csv",
            caption="report/modality_vs_language.rst",
            category="Tables",
            subcategory="Modality vs language gap",
            labels={"table": "modality_vs_language", "format": "csv"},
        ),
        modality_vs_language_groups=report(
            "results/summary/modality_vs_language_groups.csv",
            caption="report/modality_vs_language.rst",
            category="Tables",
            subcategory="Modality vs language gap",
            labels={"table": "modality_vs_language_groups", "format": "csv"},
        ),
        modality_vs_language_html=report(
            "results/summary/modality_vs_language.html",
            caption="report/modality_vs_language.rst",
            category="Tables",
            subcategory="Modality vs language gap",
            labels={"table": "modality_vs_language", "format": "html"},
        ),
    params:
        metric=SUMMARY_METRIC,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/summarize/gaps.log",
    script:
        "../workflow_scripts/summarize_gaps.py"


rule summarize_length_adaptation:
    """Cross-modal score before vs after each family's length adaptation, by resource group."""
    input:
        similarity="results/summary/similarity.parquet",
    output:
        per_language=report(
            "results/summary/length_adaptation.csv",
            caption="report/length_adaptation.rst",
            category="Tables",
            subcategory="Length adaptation",
            labels={"table": "length_adaptation", "format": "csv"},
        ),
        per_group=report(
            "results/summary/length_adaptation_groups.csv",
            caption="report/length_adaptation.rst",
            category="Tables",
            subcategory="Length adaptation",
            labels={"table": "length_adaptation_groups", "format": "csv"},
        ),
        html=report(
            "results/summary/length_adaptation.html",
            caption="report/length_adaptation.rst",
            category="Tables",
            subcategory="Length adaptation",
            labels={"table": "length_adaptation", "format": "html"},
        ),
        svg=report(
            "results/figures/length_adaptation.svg",
            caption="report/length_adaptation_figure.rst",
            category="Figures",
            labels={"figure": "length adaptation by resource group", "model": "all models"},
        ),
        png="results/figures/length_adaptation.png",
    params:
        metric=SUMMARY_METRIC,
        pairs=summarize.length_adaptation_by_model(config["models"]),
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/summarize/length_adaptation.log",
    script:
        "../workflow_scripts/summarize_length_adaptation.py"


rule summarize_lengths:
    """Pooled lengths from the stores: text tokens, speech frames before/after adaptation."""
    input:
        stores=[store_path(*view) for view in STORE_VIEWS],
    output:
        lengths=report(
            "results/summary/lengths.csv",
            caption="report/lengths.rst",
            category="Tables",
            subcategory="Lengths",
            labels={"table": "lengths", "format": "csv"},
        ),
        ratios=report(
            "results/summary/length_ratios.csv",
            caption="report/lengths.rst",
            category="Tables",
            subcategory="Lengths",
            labels={"table": "length_ratios", "format": "csv"},
        ),
        ratio_groups=report(
            "results/summary/length_ratios_groups.csv",
            caption="report/lengths.rst",
            category="Tables",
            subcategory="Lengths",
            labels={"table": "length_ratios_groups", "format": "csv"},
        ),
        html=report(
            "results/summary/lengths.html",
            caption="report/lengths.rst",
            category="Tables",
            subcategory="Lengths",
            labels={"table": "lengths", "format": "html"},
        ),
    params:
        views=STORE_VIEWS,
        taps=summarize.length_taps_by_model(config["models"]),
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/summarize/lengths.log",
    script:
        "../workflow_scripts/summarize_lengths.py"


rule summarize_figures:
    """Layer-wise curves with null bands, models side by side, modality vs language gap."""
    input:
        similarity="results/summary/similarity.parquet",
        modality_vs_language="results/summary/modality_vs_language.csv",
    output:
        svg=report(
            "results/figures/layer_curves.svg",
            caption="report/layer_curves.rst",
            category="Figures",
            labels={"figure": "layer curves", "model": "all models"},
        ),
        png="results/figures/layer_curves.png",
        cross_lingual_svg=report(
            "results/figures/cross_lingual_curves.svg",
            caption="report/cross_lingual_curves.rst",
            category="Figures",
            labels={"figure": "cross-lingual text vs speech", "model": "all models"},
        ),
        cross_lingual_png="results/figures/cross_lingual_curves.png",
        models_svg=report(
            "results/figures/models_cross_modal.svg",
            caption="report/models_cross_modal.rst",
            category="Figures",
            labels={"figure": "cross-modal, models compared", "model": "all models"},
        ),
        models_png="results/figures/models_cross_modal.png",
        gap_svg=report(
            "results/figures/modality_vs_language.svg",
            caption="report/modality_vs_language_figure.rst",
            category="Figures",
            labels={"figure": "modality gap vs language gap", "model": "all models"},
        ),
        gap_png="results/figures/modality_vs_language.png",
        metrics_svg=report(
            "results/figures/metrics_by_layer.svg",
            caption="report/metrics_by_layer.rst",
            category="Figures",
            labels={"figure": "every metric by layer", "model": "all models"},
        ),
        metrics_png="results/figures/metrics_by_layer.png",
    params:
        metric=SUMMARY_METRIC,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/summarize/figures.log",
    script:
        "../workflow_scripts/summarize_figures.py"


rule summarize_heatmaps:
    """Language x language cross-lingual matrices of one model at chosen taps."""
    input:
        similarity="results/summary/similarity.parquet",
    output:
        svg=report(
            "results/figures/heatmaps/{model}.svg",
            caption="report/heatmaps.rst",
            category="Figures",
            labels={"figure": "language heatmaps", "model": "{model}"},
        ),
        png="results/figures/heatmaps/{model}.png",
    params:
        metric=SUMMARY_METRIC,
        taps=SUMMARY["heatmap_taps"],
        order=SUMMARY["language_order"],
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/summarize/heatmaps/{model}.log",
    script:
        "../workflow_scripts/summarize_heatmaps.py"


rule summarize_config:
    """The validated configuration (defaults filled in) as YAML and as a report page."""
    output:
        yaml="results/summary/config.yaml",
        html=report(
            "results/summary/config.html",
            caption="report/config.rst",
            category="Configuration",
            labels={"page": "configuration"},
        ),
    params:
        digest=CONFIG_DIGEST,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/summarize/config.log",
    script:
        "../workflow_scripts/summarize_config.py"
