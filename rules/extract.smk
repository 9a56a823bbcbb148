rule extract_demo_model:
    """Build a tiny random-init checkpoint of a real architecture (offline demo and tests)."""
    output:
        directory(f"{gw.DEMO_MODEL_ROOT}/{{demo_model}}"),
    log:
        "logs/extract/demo_model/{demo_model}.log",
    script:
        "../workflow_scripts/extract_demo_model.py"


rule extract_activations:
    """Run every sentence of one view through a model; store every tap's pooled vectors."""
    input:
        manifest="results/corpus/{language}/manifest.tsv",
        model_dir=get_model_dir,
    output:
        store=directory("results/activations/{model}/{language}/{modality}.zarr"),
        stats="results/activations/{model}/{language}/{modality}.json",
    params:
        model=get_model_params,
        budget=get_extract_budget,
        chunk_size=config["extract"]["chunk_size"],
        device=config["extract"]["device"],
    threads: 2
    resources:
        mem_mb=config["extract"]["mem_mb"],
        runtime=config["extract"]["runtime"],
        gpu=config["extract"]["gpu"],
    log:
        "logs/extract/{model}/{language}.{modality}.log",
    benchmark:
        "benchmarks/out/extract/{model}/{language}.{modality}.tsv"
    script:
        "../workflow_scripts/extract_activations.py"
