rule similarity_pair:
    """Compare two views of one model at every matching tap (all metrics, with calibration)."""
    input:
        unpack(get_pair_stores),
    output:
        "results/similarity/{model}/{lang_a}.{modality_a}~{lang_b}.{modality_b}.parquet",
    params:
        adapter=get_adapter,
        options=config["similarity"],
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/similarity/{model}/{lang_a}.{modality_a}~{lang_b}.{modality_b}.log",
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
