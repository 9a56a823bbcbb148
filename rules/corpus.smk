rule corpus_synthesize_speech:
    """Synthesise one demo language with espeak-ng into the official FLEURS layout."""
    output:
        table=f"{corpus.DEMO_CORPUS_ROOT}/{{fleurs}}/{{split}}.tsv",
        audio=directory(f"{corpus.DEMO_CORPUS_ROOT}/{{fleurs}}/audio/{{split}}"),
    params:
        language=get_fleurs_language,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/corpus/synthesize/{fleurs}.{split}.log",
    script:
        "../workflow_scripts/corpus_synthesize_speech.py"


rule corpus_fetch_fleurs:
    """Fetch one FLEURS split (table + audio tarball) from the hub into the official layout."""
    output:
        table=f"{corpus.FLEURS_HF_ROOT}/{{fleurs}}/{{split}}.tsv",
        audio=directory(f"{corpus.FLEURS_HF_ROOT}/{{fleurs}}/audio/{{split}}"),
    params:
        repo=config["corpus"]["fleurs_hf"]["repo"],
        revision=config["corpus"]["fleurs_hf"]["revision"],
        cache_dir=config["corpus"]["hf_cache_dir"],
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/corpus/fetch_fleurs/{fleurs}.{split}.log",
    script:
        "../workflow_scripts/corpus_fetch_fleurs.py"


rule corpus_fetch_dataset:
    """Export one language of a parquet speech dataset (16 kHz WAV) into the official layout."""
    output:
        table=f"{corpus.HF_DATASET_ROOT}/{{fleurs}}/{{split}}.tsv",
        audio=directory(f"{corpus.HF_DATASET_ROOT}/{{fleurs}}/audio/{{split}}"),
    params:
        language=get_fleurs_language,
        options=config["corpus"]["hf_dataset"],
        cache_dir=config["corpus"]["hf_cache_dir"],
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/corpus/fetch_dataset/{fleurs}.{split}.log",
    script:
        "../workflow_scripts/corpus_fetch_dataset.py"


rule corpus_manifest:
    """Check one language's audio and text and normalise its split table into the manifest."""
    input:
        table=get_corpus_table,
        audio=get_corpus_audio,
        sentence_ids=get_sentence_ids_file,
    output:
        manifest="results/corpus/{language}/manifest.tsv",
        report="results/corpus/{language}/report.json",
    params:
        corpus=corpus.manifest_params(config["corpus"]),
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/corpus/manifest/{language}.log",
    script:
        "../workflow_scripts/corpus_manifest.py"


rule corpus_coverage:
    """Which sentence ids every language holds: id x language table, summary, common ids."""
    input:
        manifests=expand("results/corpus/{language}/manifest.tsv", language=LANGUAGES),
        sentence_ids=get_sentence_ids_file,
    output:
        table="results/corpus/coverage.tsv",
        summary="results/corpus/coverage.json",
        common_ids="results/corpus/common_ids.txt",
    params:
        languages=LANGUAGES,
    conda:
        "../envs/gapscope.yaml"
    log:
        "logs/corpus/coverage.log",
    script:
        "../workflow_scripts/corpus_coverage.py"
