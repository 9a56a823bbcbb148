rule extract_demo_model:
    """Build a tiny random-init checkpoint of a real architecture (offline demo and tests)."""
    output:
        directory(f"{extract.DEMO_MODEL_ROOT}/{{demo_model}}"),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/extract/demo_model/{demo_model}.log",
    script:
        "../workflow_scripts/extract_demo_model.py"


rule extract_activations:
    """Run every sentence of one view through a model; store every tap's pooled vectors."""
    wildcard_constraints:
        model=extract.models_regex(OTHER_MODELS),
    input:
        manifest="results/corpus/{language}/manifest.tsv",
        model_dir=get_model_dir,
    output:
        store=directory("results/activations/{model}/{language}/{modality}.zarr"),
        stats="results/activations/{model}/{language}/{modality}.json",
    params:
        # only what changes the activations: batching, chunking and device are read from
        # the config by the script, so editing them does not rerun finished stores
        model=get_model_params,
    threads: config["extract"]["threads"]
    resources:
        mem_mb=config["extract"]["mem_mb"],
        runtime=config["extract"]["runtime"],
        gpu=config["extract"]["gpu"],
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/extract/{model}/{language}.{modality}.log",
    benchmark:
        "benchmarks/out/extract/{model}/{language}.{modality}.tsv"
    script:
        "../workflow_scripts/extract_activations.py"


rule extract_activations_sonar:
    """extract_activations for SONAR models, run by the SONAR environment's interpreter."""
    wildcard_constraints:
        model=extract.models_regex(SONAR_MODELS),
    input:
        manifest="results/corpus/{language}/manifest.tsv",
    output:
        store=directory("results/activations/{model}/{language}/{modality}.zarr"),
        stats="results/activations/{model}/{language}/{modality}.json",
    params:
        model=get_model_params_json,
        budget=get_extract_budget,
        chunk_size=config["extract"]["chunk_size"],
        device=config["extract"]["device"],
        python=extract.sonar_python(config, workflow.basedir),
        src=workflow.basedir,
    threads: config["extract"]["threads"]
    resources:
        mem_mb=config["extract"]["mem_mb"],
        runtime=config["extract"]["runtime"],
        gpu=config["extract"]["gpu"],
    log:
        "logs/extract/{model}/{language}.{modality}.log",
    benchmark:
        "benchmarks/out/extract/{model}/{language}.{modality}.tsv"
    conda:
        "../envs/sonar.yaml"  # with --sdm conda, set extract.sonar_python: python
    shell:
        "{params.python:q} {params.src:q}/workflow_scripts/extract_sonar.py"
        " --manifest {input.manifest:q} --model {params.model:q}"
        " --language {wildcards.language} --modality {wildcards.modality}"
        " --store {output.store:q} --stats {output.stats:q} --log {log:q}"
        " --budget {params.budget} --chunk-size {params.chunk_size}"
        " --device {params.device} --threads {threads}"
