"""Property-based tests of the corpus readers on generated tables (hypothesis)."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gapscope import corpus
from gapscope.corpus import fleurs

# text as transcripts may hold it: any printable unicode except the table's separators
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\t\n\r"),
    min_size=1,
    max_size=40,
).filter(lambda t: t.strip() != "")
ROWS = st.lists(
    st.tuples(st.integers(0, 10**12), TEXT, st.integers(1, 3)),
    min_size=1,
    max_size=12,
    unique_by=lambda r: r[0],
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(rows=ROWS)
def test_table_round_trip(tmp_path, rows):
    lines, expected = [], []
    for sentence_id, text, speakers in rows:
        for k in range(speakers):
            name = f"{sentence_id}_{k}.wav"
            lines.append(fleurs.table_line(sentence_id, name, text, 16000 + k))
            expected.append((sentence_id, name, text))
    path = tmp_path / "t.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = fleurs.read_tsv(path)
    got = list(zip(table["id"], table["file_name"], table["raw_transcription"], strict=True))
    assert got == expected


@SETTINGS
@given(rows=ROWS, cap=st.one_of(st.none(), st.integers(3, 20)))
def test_manifest_is_sorted_unique_and_capped(rows, cap):
    records = [
        [sid, f"{sid}_{k}.wav", text, "", "", "16000", "MALE"]
        for sid, text, speakers in rows
        for k in range(speakers)
    ]
    table = pd.DataFrame(records, columns=fleurs.TSV_COLUMNS)
    manifest = corpus.build_manifest(table, "root", language="eng_Latn", max_sentences=cap)
    ids = manifest["sentence_id"].tolist()
    assert ids == sorted(set(ids))  # one recording per id (first), ascending
    all_ids = sorted(r[0] for r in rows)
    assert ids == (all_ids if cap is None else all_ids[:cap])
    by_id = {r[0]: r[1] for r in rows}
    assert all(manifest["text"].iloc[i] == by_id[sid].strip() for i, sid in enumerate(ids))
    assert all(a.endswith("_0.wav") for a in manifest["audio"])


@SETTINGS
@given(text=TEXT)
def test_normalised_transcription_has_no_punctuation_or_upper_case(text):
    out = fleurs.normalise_transcription(text)
    assert out == out.lower()
    assert not any(unicodedata.category(ch).startswith("P") for ch in out)
    assert "  " not in out and out == out.strip()


@given(junk=st.text(min_size=1, max_size=60))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_malformed_tables_fail_with_a_line_number_or_parse(tmp_path, junk):
    path = tmp_path / "junk.tsv"
    path.write_text(junk, encoding="utf-8")
    try:
        table = fleurs.read_tsv(path)
    except ValueError as err:
        assert str(path) in str(err)
    else:  # whatever parses is a well-formed table
        assert list(table.columns) == fleurs.TSV_COLUMNS
        assert table["id"].dtype == "int64"


def test_empty_transcripts_are_refused_with_their_ids():
    """A hand-picked case the generators above never produce: whitespace-only text."""
    table = pd.DataFrame(
        [[1, "a.wav", "One.", "", "", "1", "M"], [2, "b.wav", "   ", "", "", "1", "M"]],
        columns=fleurs.TSV_COLUMNS,
    )
    with pytest.raises(ValueError, match=r"\[2\]"):
        corpus.build_manifest(table, "root", language="eng_Latn", source="t.tsv")
