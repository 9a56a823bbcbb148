rule similarity_view:
    """Prepare the views of one language (each modality a comparison needs) for every pair
    they meet: per tap, its SVCCA reduction, held-out folds and Gram matrix (what a pair
    needs from one view, computed once per run)."""
    input:
        stores=get_view_stores,
    output:
        "results/similarity/{model}/views/{language}.npz",
    params:
        # only what changes a prepared view: the device is read from the config by the
        # script, and the null and bootstrap options concern the pairs alone
        options=get_view_options,
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/similarity/{model}/views/{language}.log",
    script:
        "../workflow_scripts/similarity_view.py"


rule similarity_pair:
    """Compare the views of one language pair, each modality across the two languages (or,
    for a language with itself, its text against its speech), at every matching tap (all
    metrics, with calibration). A pair of languages, not of views, is the unit: fewer jobs,
    and a new language still only adds jobs."""
    input:
        unpack(get_pair_inputs),
    output:
        "results/similarity/{model}/{lang_a}~{lang_b}.tsv",
    params:
        adapter=get_adapter,
        comparisons=get_comparisons,
        options=get_pair_options,
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/similarity/{model}/{lang_a}~{lang_b}.log",
    script:
        "../workflow_scripts/similarity_pair.py"


rule similarity_table:
    """Concatenate every pair into the tidy similarity table (Parquet + CSV)."""
    input:
        get_pair_tables,
    output:
        parquet=report(
            "results/summary/similarity.parquet",
            caption="report/similarity.rst",
            category="Tables",
        ),
        csv="results/summary/similarity.csv",
    resources:
        mem_mb=4000,
        runtime=15,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/similarity/table.log",
    script:
        "../workflow_scripts/similarity_table.py"
