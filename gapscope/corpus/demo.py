"""The project's own parallel demo corpus (written for gapscope, not taken from any corpus)."""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

import pandas as pd

from gapscope import languages


@cache
def sentences() -> pd.DataFrame:
    """The demo sentences: one row per sentence id, one column per FLORES code."""
    with (
        resources.files("gapscope")
        .joinpath("corpus/data/demo_sentences.tsv")
        .open(encoding="utf-8") as handle
    ):
        df = pd.read_csv(handle, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    df["id"] = df["id"].astype("int64")
    return df.set_index("id")


def available_languages() -> list[str]:
    """FLORES codes the demo corpus has text for."""
    return list(sentences().columns)


def language_sentences(language: str) -> pd.Series:
    """Sentence id -> text for one language, or a clear error for a language not in the demo."""
    languages.get(language)
    table = sentences()
    if language not in table.columns:
        raise ValueError(
            f"language {language}: not in the demo corpus, which has {', '.join(table.columns)}; "
            "use corpus.source fleurs_hf or fleurs_local for other languages"
        )
    return table[language]


def synthesize_split(language: str, root: str, split: str) -> int:
    """Synthesise every demo sentence of one language into the FLEURS layout under ``root``.

    Returns the number of sentences written. A language without an espeak-ng voice raises
    :class:`gapscope.corpus.tts.NoVoiceError` before anything is written.
    """
    import logging

    from gapscope.corpus import fleurs, tts

    tts.espeak_voice(language)
    rows = []
    for sentence_id, text in language_sentences(language).items():
        rows.append((int(sentence_id), text, tts.synthesize(text, language)))
        logging.getLogger(__name__).info(
            "%s %s: %.2f s", language, sentence_id, len(rows[-1][2]) / 16000
        )
    fleurs.write_split(root, languages.get(language).fleurs, split, rows)
    return len(rows)
