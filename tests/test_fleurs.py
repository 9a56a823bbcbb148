"""Real data sources on small FLEURS-format fixtures: local folder, hub files, parquet datasets.

The fixture is built with espeak-ng (several speakers per id, ids missing in one language, a
corrupt file, a 44.1 kHz stereo file, silent and clipped files, an empty transcript); the
hub paths read local files in the hub's layout and format with huggingface_hub offline.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from gapscope import corpus, languages
from gapscope.corpus import audio, coverage, demo, fleurs, hf_dataset, hub, tts
from gapscope.stages import corpus as corpus_stage

IDS = [1905, 1906, 1912, 1913, 1920, 1931, 1938, 1947, 1950, 1962]
LANGS = ["eng_Latn", "deu_Latn", "swh_Latn"]
MISSING = {"deu_Latn": {1931, 1950}}  # ids the German split lacks
RECORDINGS = {sid: 1 + i % 3 for i, sid in enumerate(IDS)}  # 1, 2 or 3 speakers per id
SPEAKERS = [(165, 35), (145, 60), (185, 80)]  # espeak-ng (speed, pitch) per speaker
STEREO_44K = ("eng_Latn", 1920, 0)  # 44.1 kHz stereo file
SILENT = ("eng_Latn", 1947)  # every recording of this id is silent -> id dropped (skip)
CORRUPT = ("deu_Latn", 1912, 0)  # not audio -> next recording used (first + skip)
CLIPPED = ("swh_Latn", 1906, 1)  # heavily clipped second recording
EMPTY_TEXT = ("swh_Latn", 1962)  # empty transcript
SPLIT = "test"


def file_name(sid: int, k: int) -> str:
    return f"{sid * 7919 + k * 104729}.wav"


def build_fleurs_folder(root: Path, langs=LANGS) -> Path:
    """Write a small FLEURS split per language in the official layout; return ``root``."""
    texts = demo.sentences()
    for lang in langs:
        code = languages.get(lang).fleurs
        folder = fleurs.audio_dir(root, code, SPLIT)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, sid in enumerate(IDS):
            if sid in MISSING.get(lang, set()):
                continue
            text = texts[lang].iloc[i]
            if (lang, sid) == EMPTY_TEXT:
                text = " "
            for k in range(RECORDINGS[sid]):
                speed, pitch = SPEAKERS[k]
                samples = tts.synthesize(texts[lang].iloc[i], lang, speed=speed, pitch=pitch)
                name = file_name(sid, k)
                if (lang, sid, k) == STEREO_44K:
                    up = audio.resample(samples, audio.TARGET_RATE, 44_100)
                    sf.write(folder / name, np.stack([up, 0.8 * up], 1), 44_100, subtype="PCM_16")
                elif (lang, sid) == SILENT:
                    sf.write(folder / name, np.zeros(16_000, np.float32), 16_000)
                elif (lang, sid, k) == CORRUPT:
                    (folder / name).write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
                elif (lang, sid, k) == CLIPPED:
                    sf.write(folder / name, np.clip(samples * 30, -1, 1), 16_000)
                else:
                    sf.write(folder / name, samples, 16_000, subtype="PCM_16")
                gender = "FEMALE" if k % 2 else "MALE"
                rows.append((k, -sid, fleurs.table_line(sid, name, text, len(samples), gender)))
        # official tables are not sorted by id; recordings of an id keep their order
        lines = [line for *_, line in sorted(rows)]
        fleurs.tsv_path(root, code, SPLIT).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _blob(root: Path, data: bytes) -> Path:
    blob = root / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return blob


def build_hub_cache(
    cache: Path, fleurs_root: Path, langs=LANGS, *, repo="google/fleurs", split_name=SPLIT
) -> Path:
    """A Hugging Face cache holding the official FLEURS files of ``langs`` (as hf download)."""
    repo_dir = cache / f"datasets--{repo.replace('/', '--')}"
    commit = hashlib.sha1(repo.encode()).hexdigest()
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit)
    snapshot = repo_dir / "snapshots" / commit
    for lang in langs:
        code = languages.get(lang).fleurs
        files = {f"data/{code}/{split_name}.tsv": fleurs.tsv_path(fleurs_root, code, SPLIT)}
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for wav in sorted(fleurs.audio_dir(fleurs_root, code, SPLIT).iterdir()):
                tar.add(wav, arcname=f"{split_name}/{wav.name}")
            junk = tarfile.TarInfo(f"{split_name}/README.txt")
            junk.size = 5
            tar.addfile(junk, io.BytesIO(b"hello"))
        for name, data in {
            f"data/{code}/{split_name}.tsv": files[f"data/{code}/{split_name}.tsv"].read_bytes(),
            f"data/{code}/audio/{split_name}.tar.gz": buffer.getvalue(),
        }.items():
            blob = _blob(repo_dir, data)
            link = snapshot / name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(blob, link.parent), link)
    return cache


@pytest.fixture(scope="module")
def fleurs_root(tmp_path_factory):
    return build_fleurs_folder(tmp_path_factory.mktemp("fleurs"))


def corpus_options(**changes) -> dict:
    options = {
        "text_field": "raw_transcription",
        "recording": "first",
        "max_sentences": None,
        "sentence_ids": None,
        "on_bad_input": "skip",
        "max_clipped_fraction": 0.01,
        "max_seconds": None,
    }
    options.update(changes)
    return options


def prepare(root: Path, lang: str, **changes):
    code = languages.get(lang).fleurs
    options = corpus_options(**changes)
    return corpus.prepare_manifest(
        fleurs.tsv_path(root, code, SPLIT),
        fleurs.audio_dir(root, code, SPLIT),
        language=lang,
        **corpus_stage.manifest_arguments(options, options["sentence_ids"]),
    )


# --- readers on the espeak-ng fixture --------------------------------------------------------


def test_local_reader_skip_policy_and_report(fleurs_root):
    manifest, report = prepare(fleurs_root, "eng_Latn")
    assert manifest["sentence_id"].tolist() == [i for i in IDS if i != 1947]
    assert (manifest["recording"] == 0).all()
    assert report["dropped_ids"] == [1947]
    assert {(s["sentence_id"], s["recording"]) for s in report["skipped"]} == {(1947, 0), (1947, 1)}
    assert all("silent" in s["reason"] for s in report["skipped"])
    assert report["audio_rates"] == {"16000": 8, "44100": 1}  # files used
    assert report["audio_channels"] == {"1": 8, "2": 1}
    assert report["max_recordings_per_id"] == 3
    row = manifest.set_index("sentence_id").loc[1920]
    info = sf.info(row["audio"])
    assert info.samplerate == 44_100 and info.channels == 2
    # num_samples is the 16 kHz length extraction will see
    assert row["num_samples"] == audio.read_audio(row["audio"])[0].size
    assert manifest.set_index("sentence_id").loc[1905, "text"] == demo.sentences()["eng_Latn"][1]


def test_first_recording_falls_back_past_a_corrupt_file(fleurs_root):
    manifest, report = prepare(fleurs_root, "deu_Latn")
    assert manifest["sentence_id"].tolist() == [i for i in IDS if i not in MISSING["deu_Latn"]]
    assert report["fallback_recordings"] == [{"sentence_id": 1912, "recording": 1}]
    assert manifest.set_index("sentence_id").loc[1912, "recording"] == 1
    (bad,) = report["skipped"]
    assert bad["sentence_id"] == 1912 and "unreadable audio" in bad["reason"]
    assert report["dropped_ids"] == []


def test_error_policy_lists_every_problem(fleurs_root):
    with pytest.raises(corpus.CorpusError) as err:
        prepare(fleurs_root, "eng_Latn", on_bad_input="error", recording="all")
    message = str(err.value)
    assert "2 bad input(s)" in message and "on_bad_input: skip" in message
    assert message.count("silent audio") == 2 and file_name(1947, 1) in message
    with pytest.raises(corpus.CorpusError, match=r"(?s)1 bad input.*1912 recording 0.*unreadable"):
        prepare(fleurs_root, "deu_Latn", on_bad_input="error")


def test_recording_all_and_index(fleurs_root):
    every, report = prepare(fleurs_root, "swh_Latn", recording="all")
    expected = sum(RECORDINGS[i] for i in IDS if i != 1962) - 1  # minus the clipped file
    assert len(every) == expected
    assert every.groupby("sentence_id").size().to_dict()[1906] == 1
    assert report["dropped_ids"] == [1962]
    reasons = {s["sentence_id"]: s["reason"] for s in report["skipped"]}
    assert "clipped" in reasons[1906] and reasons[1962] == "empty raw_transcription"
    second, report = prepare(fleurs_root, "swh_Latn", recording=1)
    with_two = [i for i in IDS if RECORDINGS[i] >= 2 and i != 1906]
    assert second["sentence_id"].tolist() == with_two
    assert report["ids_without_recording"] == [i for i in IDS if RECORDINGS[i] == 1 and i != 1962]
    assert (second["recording"] == 1).all()
    # the clipped file passes when the threshold is lifted
    loose, _ = prepare(fleurs_root, "swh_Latn", recording=1, max_clipped_fraction=1.0)
    assert 1906 in loose["sentence_id"].tolist()


def test_empty_transcript_errors_with_its_id(fleurs_root):
    with pytest.raises(
        corpus.CorpusError, match=r"raw_transcription for sentence id\(s\) \[1962\]"
    ):
        prepare(fleurs_root, "swh_Latn", on_bad_input="error", max_clipped_fraction=1.0)


def test_sentence_ids_fix_the_set_and_cap_never_refills(fleurs_root, tmp_path):
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("sentence_id\n# the shared set\n1905\n1931\n1947\n99999\n\n1962\n")
    assert corpus.read_sentence_ids(ids_file) == [1905, 1931, 1947, 1962, 99999]
    manifest, report = prepare(fleurs_root, "deu_Latn", sentence_ids=str(ids_file))
    assert manifest["sentence_id"].tolist() == [1905, 1947, 1962]
    assert report["missing_ids"] == [1931, 99999]
    assert report["ids_requested"] == 5
    manifest, report = prepare(fleurs_root, "eng_Latn", sentence_ids=str(ids_file))
    assert manifest["sentence_id"].tolist() == [1905, 1931, 1962]  # 1947 is silent
    assert report["dropped_ids"] == [1947] and report["missing_ids"] == [99999]
    # the cap keeps the smallest ids before checks: the silent one is not replaced
    manifest, report = prepare(fleurs_root, "eng_Latn", max_sentences=8)
    assert manifest["sentence_id"].tolist() == IDS[:7]
    assert report["ids_beyond_max_sentences"] == 2
    (tmp_path / "bad.txt").write_text("1905\nabc\n")
    with pytest.raises(ValueError, match=r"corpus.sentence_ids: .*line 2: 'abc'"):
        corpus.read_sentence_ids(tmp_path / "bad.txt")


def test_too_few_sentences_fail_clearly(fleurs_root, tmp_path):
    (tmp_path / "ids.txt").write_text("1905\n1947\n")
    with pytest.raises(corpus.CorpusError, match="1 sentence.*at least 3.*dropped_ids=1"):
        prepare(fleurs_root, "eng_Latn", sentence_ids=str(tmp_path / "ids.txt"))


# --- table and audio hardening ---------------------------------------------------------------


def test_read_tsv_tolerates_bom_crlf_blank_lines_and_duplicates(tmp_path):
    row = "7\ta.wav\tHi there.\thi there\t\t16000\tMALE"
    (tmp_path / "t.tsv").write_bytes(("\ufeff" + row + "\r\n\r\n" + row + "\r\n").encode())
    table = fleurs.read_tsv(tmp_path / "t.tsv")
    assert table["id"].tolist() == [7] and table["gender"].tolist() == ["MALE"]
    (tmp_path / "short.tsv").write_text(row + "\n8\tb.wav\tShort\n")
    with pytest.raises(ValueError, match="short.tsv: line 2: 3 tab-separated fields, expected 7"):
        fleurs.read_tsv(tmp_path / "short.tsv")
    (tmp_path / "noname.tsv").write_text("8\t \tText\ttext\t\t1\tMALE\n")
    with pytest.raises(ValueError, match="line 1: empty file_name"):
        fleurs.read_tsv(tmp_path / "noname.tsv")
    (tmp_path / "empty.tsv").write_text("\n")
    with pytest.raises(ValueError, match="empty FLEURS split table"):
        fleurs.read_tsv(tmp_path / "empty.tsv")


def test_audio_folder_finds_files_one_level_deeper(tmp_path):
    nested = tmp_path / "audio" / "test" / "test"
    nested.mkdir(parents=True)
    sf.write(nested / "a.wav", np.full(1600, 0.1, np.float32), 16_000)
    folder = fleurs.AudioFolder(tmp_path / "audio" / "test")
    assert folder.resolve("a.wav") == nested / "a.wav"
    assert not folder.resolve("b.wav").exists()
    (tmp_path / "audio" / "test" / "x").mkdir()
    sf.write(tmp_path / "audio" / "test" / "x" / "a.wav", np.zeros(10), 16_000)
    with pytest.raises(ValueError, match="'a.wav' is ambiguous"):
        fleurs.AudioFolder(tmp_path / "audio" / "test").resolve("a.wav")


def test_inspect_audio_rejects_each_kind_of_bad_file(tmp_path):
    rate = 22_050
    t = np.arange(rate) / rate
    tone = (0.4 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(tmp_path / "ok.flac", tone, rate)
    info = audio.inspect_audio(tmp_path / "ok.flac")
    assert (info.rate, info.channels, info.num_samples) == (rate, 1, 16_000)
    cases = {
        "clipped": np.clip(tone * 10, -1, 1),
        "silent": np.zeros(rate, np.float32),
        "empty audio": np.zeros(0, np.float32),
        "shorter than": tone[:500],
    }
    for reason, samples in cases.items():
        path = tmp_path / f"{reason.split()[0]}.wav"
        sf.write(path, samples, rate)
        with pytest.raises(audio.AudioError, match=f"{path.name}: {reason}"):
            audio.inspect_audio(path)
    (tmp_path / "junk.wav").write_bytes(b"\x00" * 100)
    with pytest.raises(audio.AudioError, match="junk.wav: unreadable"):
        audio.inspect_audio(tmp_path / "junk.wav")
    assert audio.inspect_audio(tmp_path / "clipped.wav", max_clipped_fraction=1.0).num_samples
    with pytest.raises(
        audio.AudioError, match=r"ok.flac: longer than corpus.max_seconds=0.5 \(1.0 s\)"
    ):
        audio.inspect_audio(tmp_path / "ok.flac", max_seconds=0.5)


def test_majority_text_wins_and_is_reported():
    table = pd.DataFrame(
        [
            [3, "a.wav", "Good  night.", "", "", "1", "M"],
            [3, "b.wav", "Good night!", "", "", "1", "M"],
            [3, "c.wav", "Good night. ", "", "", "1", "M"],
        ],
        columns=fleurs.TSV_COLUMNS,
    )
    report: dict = {}
    manifest = corpus.build_manifest(table, "r", language="eng_Latn", report=report)
    assert manifest["text"].tolist() == ["Good  night."]
    assert report["text_variants"] == [3]


# --- hub files (fleurs_hf) -------------------------------------------------------------------


def test_choose_files_is_tolerant_and_explains_absence():
    listing = ["data/en_us/validation.tsv", "data/en_us/audio/validation.tar.gz", "README.md"]
    assert hub.choose_files(listing, "en_us", "dev") == (listing[0], listing[1])
    with pytest.raises(
        FileNotFoundError,
        match=r"no table .* it has: data/en_us/audio/validation.tar.gz, data/en_us/validation.tsv",
    ):
        hub.choose_files(listing, "en_us", "test")
    with pytest.raises(FileNotFoundError, match="no data/xx_yy/ folder"):
        hub.choose_files(listing, "xx_yy", "test")


def test_fetch_from_offline_hub_cache_matches_local(fleurs_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = build_hub_cache(tmp_path / "hf", fleurs_root, ["deu_Latn"])
    out = tmp_path / "resources"
    table, folder = out / "de_de" / "test.tsv", out / "de_de" / "audio" / "test"
    info = hub.fetch_split("de_de", "test", table, folder, cache_dir=str(cache))
    assert info["table"] == "data/de_de/test.tsv" and info["missing_audio"] == 0
    assert info["audio_files"] == sum(RECORDINGS[i] for i in IDS if i not in MISSING["deu_Latn"])
    assert not (folder / "README.txt").exists()
    local, _ = prepare(fleurs_root, "deu_Latn")
    fetched, report = prepare(out, "deu_Latn")
    assert fetched["sentence_id"].tolist() == local["sentence_id"].tolist()
    assert fetched["text"].tolist() == local["text"].tolist()
    assert report["fallback_recordings"] == [{"sentence_id": 1912, "recording": 1}]
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE is set.*hf download"):
        hub.fetch_split("en_us", "test", table, folder, cache_dir=str(cache))


def test_fetch_uses_the_listing_when_online(fleurs_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # downloads still come from the local cache
    cache = build_hub_cache(tmp_path / "hf", fleurs_root, ["deu_Latn"], split_name="validation")
    listing = ["data/de_de/validation.tsv", "data/de_de/audio/validation.tar.gz"]
    monkeypatch.setattr(hub, "list_files", lambda repo, revision: listing)
    out = tmp_path / "out"
    info = hub.fetch_split(
        "de_de", "dev", out / "dev.tsv", out / "audio" / "dev", cache_dir=str(cache)
    )
    assert info["archive"] == "data/de_de/audio/validation.tar.gz"
    assert len(fleurs.read_tsv(out / "dev.tsv")) == info["rows"]


def test_extract_audio_is_flat_and_rejects_garbage(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("test/x.wav", "../../evil.wav", "test/sub/y.flac"):
            member = tarfile.TarInfo(name)
            member.size = 3
            tar.addfile(member, io.BytesIO(b"abc"))
    assert hub.extract_audio(archive, tmp_path / "out") == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["evil.wav", "x.wav", "y.flac"]
    assert not (tmp_path.parent / "evil.wav").exists()
    (tmp_path / "bad.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(ValueError, match="cannot unpack"):
        hub.extract_audio(tmp_path / "bad.tar.gz", tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# --- parquet datasets (hf_dataset) -----------------------------------------------------------


def build_parquet_dataset(root: Path, fleurs_root: Path, langs=LANGS, *, by_column=False) -> Path:
    """A parquet dataset in the hub layout made from the FLEURS fixture (pyarrow only).

    ``by_column``: one configuration with a ``locale`` column; else one configuration per
    language (named by the FLEURS code, declared in the README like hub datasets do).
    """
    pytest.importorskip("datasets", reason="hf_dataset needs the datasets package (gapscope[hf])")
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {
        "sentence_id": {"dtype": "string", "_type": "Value"},
        "locale": {"dtype": "string", "_type": "Value"},
        "sentence": {"dtype": "string", "_type": "Value"},
        "speech": {"_type": "Audio"},
    }
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    audio_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    configs, tables = [], []
    for lang in langs:
        code = languages.get(lang).fleurs
        table = fleurs.read_tsv(fleurs.tsv_path(fleurs_root, code, SPLIT))
        folder = fleurs.audio_dir(fleurs_root, code, SPLIT)
        speech = [
            {"bytes": (folder / name).read_bytes(), "path": name} for name in table["file_name"]
        ]
        data = pa.table(
            {
                "sentence_id": pa.array([str(i) for i in table["id"]], pa.string()),
                "locale": [code] * len(table),
                "sentence": [t.replace(".", ".\n", 1) for t in table["raw_transcription"]],
                "speech": pa.array(speech, audio_type),
            }
        ).replace_schema_metadata(meta)
        if by_column:
            tables.append(data)
        else:
            (root / code).mkdir(parents=True, exist_ok=True)
            pq.write_table(data, root / code / "test-00000-of-00001.parquet")
            configs.append(
                f"- config_name: {code}\n  data_files:\n  - split: test\n"
                f"    path: {code}/test-*.parquet\n"
            )
    if by_column:
        (root / "data").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.concat_tables(tables), root / "data" / "test-00000-of-00001.parquet")
    else:
        (root / "README.md").write_text("---\nconfigs:\n" + "".join(configs) + "---\n")
    return root


def dataset_options(path: Path, **changes) -> hf_dataset.DatasetSpec:
    options = {
        "path": str(path),
        "revision": None,
        "config_name": "{code}",
        "split": None,
        "language_column": None,
        "language_code": "fleurs",
        "language_map": {},
        "id_column": "sentence_id",
        "text_column": "sentence",
        "audio_column": "speech",
    }
    options.update(changes)
    return corpus_stage.dataset_spec(options)


@pytest.mark.parametrize("by_column", [False, True], ids=["config_per_language", "column"])
def test_parquet_dataset_exports_to_the_same_manifest(fleurs_root, tmp_path, by_column):
    ds_root = build_parquet_dataset(tmp_path / "ds", fleurs_root, ["eng_Latn"], by_column=by_column)
    options = (
        dataset_options(ds_root, config_name=None, language_column="locale")
        if by_column
        else dataset_options(ds_root)
    )
    out = tmp_path / "resources"
    table, folder = out / "en_us" / "test.tsv", out / "en_us" / "audio" / "test"
    info = hf_dataset.export_language(
        options, "eng_Latn", "test", table, folder, cache_dir=str(tmp_path / "cache")
    )
    assert info["rows"] == sum(RECORDINGS.values()) and info["undecodable"] == 0
    assert {sf.info(p).samplerate for p in folder.iterdir()} == {16_000}
    local, _ = prepare(fleurs_root, "eng_Latn")
    exported, report = prepare(out, "eng_Latn")
    assert exported["sentence_id"].tolist() == local["sentence_id"].tolist()
    # the newline inside a transcript became a space
    assert exported["text"].str.replace(". ", ".").tolist() == local["text"].tolist()
    assert report["dropped_ids"] == [1947]
    np.testing.assert_allclose(
        exported["num_samples"].to_numpy(), local["num_samples"].to_numpy(), atol=1
    )


def test_parquet_dataset_undecodable_audio_is_reported(fleurs_root, tmp_path):
    ds_root = build_parquet_dataset(tmp_path / "ds", fleurs_root, ["deu_Latn"])
    out = tmp_path / "resources"
    info = hf_dataset.export_language(
        dataset_options(ds_root),
        "deu_Latn",
        "test",
        out / "de_de" / "test.tsv",
        out / "de_de" / "audio" / "test",
        cache_dir=str(tmp_path / "cache"),
    )
    assert info["undecodable"] == 1
    _, report = prepare(out, "deu_Latn")
    (bad,) = report["skipped"]
    assert bad["sentence_id"] == 1912 and "unreadable" in bad["reason"]


def test_parquet_dataset_errors_name_the_key(fleurs_root, tmp_path):
    ds_root = build_parquet_dataset(tmp_path / "ds", fleurs_root, ["eng_Latn"], by_column=True)
    out = tmp_path / "o"
    cache = str(tmp_path / "cache")
    bad = dataset_options(ds_root, config_name=None, language_column="locale", text_column="txt")
    with pytest.raises(ValueError, match=r"corpus.hf_dataset.text_column: no column 'txt'"):
        hf_dataset.export_language(bad, "eng_Latn", "test", out / "t.tsv", out, cache_dir=cache)
    wrong = dataset_options(ds_root, config_name=None, language_column="locale")
    with pytest.raises(ValueError, match=r"language_column: no row of deu_Latn .*values: en_us"):
        hf_dataset.export_language(wrong, "deu_Latn", "test", out / "t.tsv", out, cache_dir=cache)
    ids = dataset_options(ds_root, config_name=None, language_column="locale", id_column="locale")
    with pytest.raises(ValueError, match=r"corpus.hf_dataset.id_column: row 0 has id 'en_us'"):
        hf_dataset.export_language(ids, "eng_Latn", "test", out / "t.tsv", out, cache_dir=cache)
    with pytest.raises(ValueError, match=r"corpus.hf_dataset.split"):
        hf_dataset.export_language(
            dataset_options(ds_root, config_name=None, language_column="locale", split="train"),
            "eng_Latn",
            "test",
            out / "t.tsv",
            out,
            cache_dir=cache,
        )


# --- coverage --------------------------------------------------------------------------------


def test_coverage_counts_gaps_per_language():
    manifests = {
        "eng_Latn": pd.DataFrame({"sentence_id": [1, 2, 2, 3]}),
        "deu_Latn": pd.DataFrame({"sentence_id": [2, 3, 4]}),
    }
    table = coverage.coverage_table(manifests, requested=[1, 2, 3, 9])
    assert table["sentence_id"].tolist() == [1, 2, 3, 4, 9]
    assert table["eng_Latn"].tolist() == [1, 2, 1, 0, 0]
    assert table["n_languages"].tolist() == [1, 2, 2, 1, 0]
    assert table["requested"].tolist() == [1, 1, 1, 0, 1]
    summary = coverage.coverage_summary(table, ["eng_Latn", "deu_Latn"])
    assert summary["common_ids"] == [2, 3]
    assert summary["per_language"]["deu_Latn"]["missing_vs_requested"] == 2
    assert summary["per_language"]["eng_Latn"]["only_here"] == 1
