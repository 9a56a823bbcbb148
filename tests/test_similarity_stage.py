"""The similarity stage: prepared views on disk, pairs from them, their rows and refusals."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gapscope.similarity import pairwise
from gapscope.stages.common import ConfigError
from gapscope.stages.similarity import (
    Options,
    PreparedViewError,
    compare_files,
    compare_prepared,
    compare_stores,
    load_prepared,
    prepare_store,
    read_tables,
    save_prepared,
    to_frame,
    view_options,
    write_rows,
)

from .test_compare_stores import make

CONFIG = {
    "metrics": ["svcca", "pwcca", "cka"],
    "svcca": {"variance": 0.99, "k": None},
    "cross_lingual": "all",
    "null_permutations": 5,
    "heldout": True,
    "bootstrap": 0,
    "seed": 2,
    "mknn": {"k": 10},
    "standardize": False,
    "device": "auto",
}
TAPS = ("layer00", "layer01", "encoder_out")


@pytest.fixture
def stores(tmp_path):
    """Text stores of two languages, rows in different orders, d > n for one tap."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((50, 5))
    ids = np.arange(10, 60)
    paths = {}
    for lang, order in (("eng_Latn", np.arange(50)), ("deu_Latn", rng.permutation(50))):
        data = {
            t: (z @ rng.standard_normal((5, d)) + 0.5 * rng.standard_normal((50, d)))[order]
            for t, d in zip(TAPS, (8, 12, 70), strict=True)
        }
        paths[lang] = make(
            tmp_path / f"{lang}.zarr", ids[order], data, language=lang, modality="text"
        )
    return paths


def pair(prepared_a, prepared_b, options):
    rows = compare_prepared(
        prepared_a, prepared_b, model="m", adapter="seamless_m4t_v2", options=options
    )
    return to_frame(rows)


def test_prepared_views_on_disk_give_the_in_memory_numbers(tmp_path, stores):
    options = Options.from_config(CONFIG)
    files = {}
    for lang, path in stores.items():
        files[lang] = tmp_path / f"{lang}.npz"
        save_prepared(prepare_store(path, options), files[lang])
    loaded = [load_prepared(files[lang], options) for lang in ("deu_Latn", "eng_Latn")]
    from_disk = pair(*loaded, options)
    in_memory = compare_stores(
        stores["deu_Latn"], stores["eng_Latn"], model="m", adapter="seamless_m4t_v2",
        options=CONFIG,
    )  # fmt: skip
    pd.testing.assert_frame_equal(from_disk, in_memory)
    assert len(from_disk) == 3 * len(TAPS)
    # and both equal pairwise on the arrays aligned by id by hand
    views = {}
    for lang, path in stores.items():
        from gapscope.store import open_view

        view = open_view(path)
        order = np.argsort(view.sentence_ids)
        for tap in TAPS:
            views[f"{lang}/text/{tap}"] = view.read(tap)[order].astype(np.float64)
    names = [(f"deu_Latn/text/{t}", f"eng_Latn/text/{t}") for t in TAPS]
    expected = pairwise(
        views, names, metric=CONFIG["metrics"], null_permutations=5, heldout=True, seed=2
    )
    for column in ("score", "null_mean", "null_std"):
        np.testing.assert_allclose(from_disk[column], expected[column], rtol=0, atol=1e-12)
    np.testing.assert_allclose(from_disk["heldout"], expected["heldout"], rtol=0, atol=1e-8)


def test_a_language_file_holds_each_modality_and_a_job_compares_them_in_turn(
    tmp_path, stores, monkeypatch
):
    """save_prepared writes a language's views into one file, each under its modality;
    compare_files gives each comparison's rows in turn, the same as each compared alone,
    opening each file once. Asking for a view the file lacks, or for none of several, is
    refused by name."""
    from gapscope.stages import similarity as stage

    options = Options.from_config(CONFIG)
    rng = np.random.default_rng(4)
    data = {t: rng.standard_normal((50, d)) for t, d in zip(TAPS, (8, 12, 70), strict=True)}
    speech = make(
        tmp_path / "speech.zarr", np.arange(10, 60), data, language="eng_Latn", modality="speech"
    )
    eng, deu = tmp_path / "eng_Latn.npz", tmp_path / "deu_Latn.npz"
    save_prepared([prepare_store(stores["eng_Latn"], options), prepare_store(speech, options)], eng)
    save_prepared(prepare_store(stores["deu_Latn"], options), deu)
    kwargs = {"model": "m", "adapter": "seamless_m4t_v2", "options": options}
    comparisons = [["text", "speech"], ["speech", "text"]]
    opened = []
    mapped = stage._MappedNpz
    monkeypatch.setattr(stage, "_MappedNpz", lambda path: opened.append(path) or mapped(path))
    got = to_frame(
        compare_files([eng, eng], comparisons, [stores["eng_Latn"], speech] * 2, **kwargs)
    )
    monkeypatch.undo()
    assert opened == [eng]
    text, spoken = (load_prepared(eng, options, modality=m) for m in ("text", "speech"))
    expected = pd.concat([pair(text, spoken, options), pair(spoken, text, options)])
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
    assert set(got["modality_a"]) == {"text", "speech"}
    across = to_frame(
        compare_files(
            [deu, eng], [["text", "text"]], [stores["deu_Latn"], stores["eng_Latn"]], **kwargs
        )
    )
    pd.testing.assert_frame_equal(across, pair(load_prepared(deu, options), text, options))
    with pytest.raises(PreparedViewError, match=r"holds the views of \['speech', 'text'\]"):
        load_prepared(eng, options)
    with pytest.raises(PreparedViewError, match=r"deu_Latn.npz: no speech view"):
        load_prepared(deu, options, modality="speech")
    with pytest.raises(ValueError, match="one prepared store per modality"):
        save_prepared([text, text], tmp_path / "twice.npz")
    with pytest.raises(ValueError, match="two stores per comparison"):
        compare_files([eng, eng], comparisons, [speech] * 2, **kwargs)


def test_a_prepared_view_is_a_plain_npz_whose_arrays_are_mapped_in_place(tmp_path, stores):
    """np.load reads a prepared view; every member's data starts on a 64-byte boundary, so
    load_prepared maps the arrays read-only in place; a view written by np.savez itself
    (unaligned), or compressed, loads to the same arrays."""
    import mmap
    import zipfile

    options = Options.from_config(CONFIG)
    path = tmp_path / "view.npz"
    save_prepared(prepare_store(stores["eng_Latn"], options), path)
    with np.load(path) as plain:
        expected = {key: plain[key] for key in plain.files}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                np.lib.format.read_magic(member)
                np.lib.format.read_array_header_1_0(member)
                offset = info.header_offset + len(info.FileHeader()) + member.tell()
            assert offset % 64 == 0, info.filename
    loaded = load_prepared(path, options)
    for tap in TAPS:
        for got, key in ((loaded.views[tap].gram, "gram"), (loaded.views[tap].cca.u, "cca/u")):
            np.testing.assert_array_equal(got, expected[f"text/{tap}/{key}"])
            assert not got.flags.writeable and got.flags.aligned
            base = got
            while isinstance(base, np.ndarray):
                base = base.base
            assert isinstance(getattr(base, "obj", base), mmap.mmap)
    for save in (np.savez, np.savez_compressed):
        save(tmp_path / "other.npz", **expected)
        again = load_prepared(tmp_path / "other.npz", options)
        for tap in TAPS:
            np.testing.assert_array_equal(again.views[tap].gram, loaded.views[tap].gram)
            np.testing.assert_array_equal(
                again.views[tap].folds[1].proj, expected[f"text/{tap}/fold1/proj"]
            )


@pytest.mark.parametrize(
    "array",
    [np.zeros((7, 3)), np.array(3), np.arange(5, dtype=">i2"), np.ones((3, 4), np.float32, "F")],
)
def test_npy_headers_read_as_numpy_reads_them(array):
    """The fast header parser gives numpy's reading of the headers numpy writes, and hands
    any other header (here: keys in another order) to numpy's own parser."""
    from gapscope.stages.similarity import _npy_header

    body = io.BytesIO()
    np.lib.format.write_array(body, array)
    stream = io.BytesIO(body.getvalue())
    np.lib.format.read_magic(stream)
    expected = (*np.lib.format.read_array_header_1_0(stream), stream.tell())
    assert _npy_header(body.getvalue()) == expected
    fields = {"shape": array.shape, "fortran_order": expected[1], "descr": array.dtype.str}
    text = repr(fields).encode("latin1").ljust(117) + b"\n"
    other = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text
    assert _npy_header(other) == expected


def test_a_pair_from_prepared_views_imports_no_store_frame_or_torch(tmp_path, stores):
    """A pair job reads its two prepared views only: importing Zarr would cost it about a
    sixth of its CPU time (the stores are read again only to realign ids or to bootstrap),
    pandas, pyarrow or torch as much again, and the scipy.linalg package (rather than the
    LAPACK wrappers alone) 0.2 CPU-s."""
    options = Options.from_config(CONFIG)
    files = []
    for lang, path in stores.items():
        files.append(tmp_path / f"{lang}.npz")
        save_prepared(prepare_store(path, options), files[-1])
    code = (
        "import sys, json; from gapscope.stages.similarity import *; "
        f"options = Options.from_config(json.loads({json.dumps(CONFIG)!r})); "
        f"views = [load_prepared(f, options) for f in {[str(f) for f in files]!r}]; "
        "rows = compare_prepared(*views, model='m', adapter='seamless_m4t_v2', options=options); "
        "print(len(rows['score']), *(m in sys.modules for m in "
        "('zarr', 'pandas', 'pyarrow', 'torch', 'scipy.linalg')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == [str(3 * len(TAPS)), *["False"] * 5], result.stderr


def test_views_holding_other_ids_are_prepared_again_on_the_shared_ones(tmp_path, stores):
    """A pair of views with different id sets compares the shared ids, as if each store held
    only those: the numbers never depend on which ids other views have."""
    options = Options.from_config(CONFIG)
    from gapscope.store import open_view

    eng = open_view(stores["eng_Latn"])
    keep = np.flatnonzero(eng.sentence_ids % 7 != 0)  # drop 7 of the 50 ids
    fewer = make(
        tmp_path / "fewer.zarr", eng.sentence_ids[keep],
        {t: eng.read(t)[keep] for t in TAPS}, language="eng_Latn", modality="text",
    )  # fmt: skip
    deu = prepare_store(stores["deu_Latn"], options)
    mixed = pair(deu, prepare_store(fewer, options), options)
    deu_ids = open_view(stores["deu_Latn"]).sentence_ids
    shared = np.isin(deu_ids, eng.sentence_ids[keep])
    deu_fewer = make(
        tmp_path / "deu_fewer.zarr", deu_ids[shared],
        {t: open_view(stores["deu_Latn"]).read(t)[shared] for t in TAPS},
        language="deu_Latn", modality="text",
    )  # fmt: skip
    aligned = pair(prepare_store(deu_fewer, options), prepare_store(fewer, options), options)
    assert (mixed["n"] == 43).all()
    pd.testing.assert_frame_equal(mixed, aligned)


def test_a_prepared_view_made_with_other_options_is_refused(tmp_path, stores):
    options = Options.from_config(CONFIG)
    path = tmp_path / "eng.npz"
    save_prepared(prepare_store(stores["eng_Latn"], options), path)
    other = Options.from_config({**CONFIG, "svcca": {"variance": 0.9, "k": None}})
    with pytest.raises(PreparedViewError, match=r"eng\.npz: prepared with options .* delete it"):
        load_prepared(path, other)
    # the null's options are not a view's: a view serves any number of permutations
    assert view_options(CONFIG) == view_options({**CONFIG, "null_permutations": 50})
    assert view_options(CONFIG) != view_options({**CONFIG, "seed": 3})  # the held-out halves
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a zip file")
    with pytest.raises(PreparedViewError, match="broken.npz: not a readable prepared view"):
        load_prepared(broken, options)


def test_missing_option_is_named():
    section = {k: v for k, v in CONFIG.items() if k != "null_permutations"}
    with pytest.raises(ConfigError, match="similarity.null_permutations"):
        Options.from_config(section)
    with pytest.raises(ConfigError, match=r"similarity\.svcca\.variance is missing"):
        Options.from_config({**CONFIG, "svcca": {"k": None}})


def test_a_new_prepared_view_format_reruns_the_views(monkeypatch):
    """The view rule's params carry the format, so Snakemake reruns views made by older code."""
    from gapscope.stages import similarity as stage

    before = view_options(CONFIG)
    monkeypatch.setattr(stage, "PREPARED_FORMAT", stage.PREPARED_FORMAT + 1)
    assert view_options(CONFIG) != before


@pytest.mark.parametrize("bootstrap", [0, 4])
def test_a_store_changed_after_its_view_was_prepared_is_named(tmp_path, stores, bootstrap):
    """Rows are read from a store by the ids its prepared view recorded (to align a pair
    whose views hold different ids, or to bootstrap); a store that has lost some of them
    since is refused with its path, not misread."""
    options = Options.from_config({**CONFIG, "bootstrap": bootstrap})
    from gapscope.store import open_view

    def subset(name: str, lang: str, keep) -> str:
        store = open_view(stores[lang])
        rows = np.flatnonzero(keep(store.sentence_ids))
        data = {t: store.read(t)[rows] for t in TAPS}
        return make(tmp_path / name, store.sentence_ids[rows], data, language=lang,
                    modality="text")  # fmt: skip

    deu = prepare_store(stores["deu_Latn"], options)
    other = stores["eng_Latn"] if bootstrap else subset("eng.zarr", "eng_Latn", lambda i: i % 5)
    deu.path = subset("deu_now.zarr", "deu_Latn", lambda i: i % 3)  # rewritten since
    with pytest.raises(PreparedViewError, match=r"deu_now\.zarr: the store no longer holds"):
        pair(deu, prepare_store(other, options), options)


def test_bootstrap_intervals_come_from_the_stores(tmp_path, stores):
    options = Options.from_config({**CONFIG, "bootstrap": 8, "metrics": ["svcca", "cka"]})
    prepared = [prepare_store(stores[lang], options) for lang in ("deu_Latn", "eng_Latn")]
    table = pair(*prepared, options)
    assert (table["ci_low"] < table["ci_high"]).all()
    assert table[["ci_low", "ci_high"]].notna().all().all()


def test_pair_rows_round_trip_exactly_through_tsv(tmp_path, stores):
    options = Options.from_config(CONFIG)
    prepared = [prepare_store(stores[lang], options) for lang in ("deu_Latn", "eng_Latn")]
    rows = compare_prepared(*prepared, model="m", adapter="seamless_m4t_v2", options=options)
    write_rows(rows, tmp_path / "pair.tsv")
    again = read_tables([tmp_path / "pair.tsv", tmp_path / "pair.tsv"])
    expected = pd.concat([to_frame(rows)] * 2, ignore_index=True)
    pd.testing.assert_frame_equal(again, expected)  # bit-identical floats, NaN kept
    assert again["ci_low"].isna().all() and again["n"].dtype == np.int64
    assert read_tables([]).columns.tolist() == expected.columns.tolist()


@pytest.mark.parametrize(
    ("adapter", "one_space"),
    [
        ("seamless_m4t_v2", {("encoder_out", "post_adaptor")}),
        ("speech_llm", {("layer00", "layer00"), ("layer01", "layer01")}),
    ],
)
def test_retrieval_rows_only_where_both_views_live_in_one_space(tmp_path, adapter, one_space):
    """Across modalities retrieval is computed only at the tap pairs the adapter's family
    declares as one space; the metrics that never compare vectors across views everywhere."""
    rng = np.random.default_rng(8)
    z = rng.standard_normal((30, 4))
    ids = np.arange(30)

    def data(taps):
        return {
            t: z @ rng.standard_normal((4, 6)) + 0.3 * rng.standard_normal((30, 6)) for t in taps
        }

    extra = {"adapter": adapter}
    text = make(tmp_path / "t.zarr", ids, data(("layer00", "layer01", "encoder_out")),
                language="eng_Latn", modality="text", **extra)  # fmt: skip
    speech_taps = ("layer00", "layer01", "encoder_out", "pre_adaptor", "post_adaptor")
    speech = make(tmp_path / "s.zarr", ids, data(speech_taps), language="eng_Latn",
                  modality="speech", **extra)  # fmt: skip
    config = {**CONFIG, "metrics": ["retrieval", "retrieval_cosine", "mknn", "svcca"],
              "mknn": {"k": 5}}  # fmt: skip
    table = compare_stores(text, speech, model="m", adapter=adapter, options=config)
    pairs = {m: set(zip(g["tap_a"], g["tap_b"], strict=True)) for m, g in table.groupby("metric")}
    assert pairs["retrieval"] == pairs["retrieval_cosine"] == one_space
    assert pairs["mknn"] == pairs["svcca"] and len(pairs["mknn"]) > len(one_space)
    assert (table.loc[table["metric"] == "mknn", ["k_a", "k_b"]] == 5).all().all()
    # across languages every tap pair is one space
    other = make(tmp_path / "d.zarr", ids, data(("layer00", "layer01", "encoder_out")),
                 language="deu_Latn", modality="text", **extra)  # fmt: skip
    table = compare_stores(other, text, model="m", adapter=adapter, options=config)
    assert len(table[table["metric"] == "retrieval"]) == 3


def test_unavailable_device_is_a_config_error_naming_the_key():
    from gapscope.stages.similarity import compute_device

    assert compute_device({"device": "cpu"}) == "cpu"
    with pytest.raises(ConfigError, match="similarity.device: "):
        compute_device({"device": "no_such_device"})
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="similarity.device: .*CUDA is not available"):
            compute_device({"device": "cuda"})
