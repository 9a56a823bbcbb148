"""Corpus stage: espeak-ng synthesis, the FLEURS layout, audio reading and manifests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from gapscope import corpus
from gapscope.corpus import audio, demo, fleurs, tts


def test_demo_corpus_shape():
    table = demo.sentences()
    assert len(table) >= 60
    assert table.index.is_unique
    assert len(table.columns) >= 10
    scripts = {code.split("_")[1] for code in table.columns}
    assert len(scripts) >= 5
    assert (table.map(str.strip) != "").all().all()


def test_mandarin_is_romanised_to_numbered_pinyin():
    out = tts.romanise("我们买了面包。", "zho_Hans")
    assert "wo3" in out and "mai3" in out
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in out)


def test_japanese_kanji_become_kana():
    out = tts.romanise("東京は雨です。", "jpn_Jpan")
    assert not any("\u4e00" <= ch <= "\u9fff" for ch in out)
    assert "とうきょう" in out


@pytest.mark.parametrize("language", ["eng_Latn", "zho_Hans", "amh_Ethi"])
def test_synthesize_gives_16k_mono_speech(language):
    text = demo.language_sentences(language).iloc[0]
    samples = tts.synthesize(text, language)
    assert samples.ndim == 1 and samples.dtype == np.float32
    seconds = samples.size / audio.TARGET_RATE
    assert 0.5 < seconds < 20
    assert np.abs(samples).max() > 0.05


def test_language_without_voice_fails_clearly():
    with pytest.raises(tts.NoVoiceError, match="yor_Latn.*no voice"):
        tts.synthesize("Ẹ kú àárọ̀", "yor_Latn")


def test_fleurs_layout_round_trip(tmp_path):
    rate = audio.TARGET_RATE
    rows = [
        (7, "Hello, world!", np.full(rate, 0.1, np.float32)),
        (3, "Good night.", np.full(800, 0.2, np.float32)),
    ]
    path = fleurs.write_split(tmp_path, "en_us", "test", rows)
    assert path == tmp_path / "en_us" / "test.tsv"
    table = fleurs.read_tsv(path)
    assert list(table.columns) == fleurs.TSV_COLUMNS
    assert table["id"].tolist() == [7, 3]
    assert table["transcription"].tolist() == ["hello world", "good night"]
    assert table["num_samples"].tolist() == [str(rate), "800"]
    data, sr = sf.read(tmp_path / "en_us" / "audio" / "test" / "7.wav")
    assert sr == rate and data.size == rate


def test_read_audio_resamples_and_mixes_down(tmp_path):
    t = np.arange(44100) / 44100
    left, right = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1) * 0.5, 44100)
    samples, rate = audio.read_audio(tmp_path / "st.wav")
    assert rate == 44100
    assert samples.shape == (16000,)
    stored, _ = sf.read(tmp_path / "st.wav", dtype="float32")  # what the 16-bit file holds
    expected = audio.resample(stored.mean(axis=1), 44100)
    np.testing.assert_allclose(samples, expected, atol=1e-6)
    # the 440 Hz + 660 Hz mix keeps its energy after resampling (no channel dropped)
    assert 0.3 < np.sqrt(np.mean(samples**2)) / (0.5 * np.sqrt(0.5)) < 1.1


def test_audio_errors_name_the_file(tmp_path):
    with pytest.raises(audio.AudioError, match="missing.wav: audio file not found"):
        audio.read_audio(tmp_path / "missing.wav")
    (tmp_path / "bad.wav").write_bytes(b"not a wav")
    with pytest.raises(audio.AudioError, match="bad.wav: unreadable"):
        audio.read_audio(tmp_path / "bad.wav")
    with pytest.raises(audio.AudioError, match="silent"):
        audio.check_audio(np.zeros(16000, np.float32), "quiet.wav")


def _table(rows):
    return pd.DataFrame(rows, columns=fleurs.TSV_COLUMNS)


def test_manifest_recording_policies_and_cap():
    table = _table(
        [
            [5, "a.wav", "Five.", "five", "", "100", "MALE"],
            [2, "b.wav", "Two.", "two", "", "100", "MALE"],
            [5, "c.wav", "Five.", "five", "", "100", "FEMALE"],
            [9, "d.wav", "Nine.", "nine", "", "100", "MALE"],
        ]
    )
    first = corpus.build_manifest(table, "root", language="eng_Latn")
    assert first["sentence_id"].tolist() == [2, 5, 9]
    assert first.set_index("sentence_id").loc[5, "audio"] == "root/a.wav"
    every = corpus.build_manifest(table, "root", language="eng_Latn", recording="all")
    assert every["sentence_id"].tolist() == [2, 5, 5, 9]
    second = corpus.build_manifest(table, "root", language="eng_Latn", recording=1)
    assert second["sentence_id"].tolist() == [5]
    capped = corpus.build_manifest(table, "root", language="eng_Latn", max_sentences=2)
    assert capped["sentence_id"].tolist() == [2, 5]


def test_manifest_rejects_empty_text_with_id():
    table = _table([[4, "a.wav", "   ", "", "", "100", "MALE"]])
    with pytest.raises(ValueError, match=r"sentence id\(s\) \[4\]"):
        corpus.build_manifest(table, "root", language="eng_Latn", source="x.tsv")


def test_non_integer_id_names_line(tmp_path):
    (tmp_path / "t.tsv").write_text("1\ta.wav\tA\ta\t\t1\tMALE\nabc\tb.wav\tB\tb\t\t1\tMALE\n")
    with pytest.raises(ValueError, match="line 2: sentence id 'abc'"):
        fleurs.read_tsv(tmp_path / "t.tsv")
