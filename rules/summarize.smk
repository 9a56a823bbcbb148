rule summarize_gaps:
    """Modality gap and language gap per model and tap."""
    input:
        "results/summary/similarity.parquet",
    output:
        report("results/summary/gaps.csv", caption="report/gaps.rst", category="Tables"),
    params:
        metric=config["similarity"]["metrics"][0],
    log:
        "logs/summarize/gaps.log",
    script:
        "../workflow_scripts/summarize_gaps.py"


rule summarize_figures:
    """Layer-wise curves: cross-modal and cross-lingual (text, speech) with null bands."""
    input:
        "results/summary/similarity.parquet",
    output:
        svg=report(
            "results/figures/layer_curves.svg",
            caption="report/layer_curves.rst",
            category="Figures",
        ),
        png="results/figures/layer_curves.png",
    params:
        metric=config["similarity"]["metrics"][0],
    log:
        "logs/summarize/figures.log",
    script:
        "../workflow_scripts/summarize_figures.py"
