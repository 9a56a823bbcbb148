rule corpus_synthesize_speech:
    """Synthesise one demo language with espeak-ng into the official FLEURS layout."""
    output:
        table=f"{gw.DEMO_CORPUS_ROOT}/{{fleurs}}/{{split}}.tsv",
        audio=directory(f"{gw.DEMO_CORPUS_ROOT}/{{fleurs}}/audio/{{split}}"),
    params:
        language=get_fleurs_language,
    log:
        "logs/corpus/synthesize/{fleurs}.{split}.log",
    script:
        "../workflow_scripts/corpus_synthesize_speech.py"


rule corpus_manifest:
    """Normalise one language's split table into the corpus manifest."""
    input:
        table=get_corpus_table,
        audio=get_corpus_audio,
    output:
        manifest="results/corpus/{language}/manifest.tsv",
        report="results/corpus/{language}/report.json",
    params:
        corpus=config["corpus"],
    log:
        "logs/corpus/manifest/{language}.log",
    script:
        "../workflow_scripts/corpus_manifest.py"
