"""compare_stores: alignment by sentence id, tap pairing, refusal of mismatched stores."""

from __future__ import annotations

import numpy as np
import pytest

from gapscope.similarity import svcca
from gapscope.stages.similarity import TIDY_COLUMNS, compare_stores
from gapscope.store import StoreError, ViewWriter

OPTIONS = {
    "metrics": ["svcca", "cka"],
    "svcca": {"variance": 0.99, "k": None},
    "null_permutations": 3,
    "heldout": True,
    "bootstrap": 0,
    "seed": 0,
    "mknn": {"k": 10},
    "standardize": False,
}
BASE = {
    "model": "m",
    "adapter": "seamless_m4t_v2",
    "checkpoint": "ckpt",
    "revision": None,
    "init": "pretrained",
    "dtype": "float32",
    "pooling": "masked_mean",
    "recording": "first",
}


def make(path, ids, data, *, language, modality, finish=True, **extra):
    taps = list(data)
    writer = ViewWriter(
        path,
        ids,
        {**BASE, "language": language, "modality": modality, "taps": taps, **extra},
        chunk_size=len(ids),
    )
    writer.write_chunk(0, data, {t: np.ones(len(ids)) for t in taps})
    if finish:
        writer.finalize(taps)
    return path


@pytest.fixture
def latent():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((40, 4))
    return rng, z


def test_alignment_by_id_not_position(tmp_path, latent):
    rng, z = latent
    x = z @ rng.standard_normal((4, 6)) + 0.1 * rng.standard_normal((40, 6))
    y = z @ rng.standard_normal((4, 5)) + 0.1 * rng.standard_normal((40, 5))
    ids = np.arange(100, 140)
    a = make(tmp_path / "a.zarr", ids, {"layer00": x}, language="eng_Latn", modality="text")
    # b holds the same sentences shuffled, two extra ids, and lacks two of a's ids
    order = rng.permutation(38)
    ids_b = np.concatenate([ids[:38][order], [900, 901]])
    y_b = np.concatenate([y[:38][order], rng.standard_normal((2, 5))])
    b = make(tmp_path / "b.zarr", ids_b, {"layer00": y_b}, language="deu_Latn", modality="text")
    table = compare_stores(a, b, model="m", adapter="seamless_m4t_v2", options=OPTIONS)
    assert list(table.columns) == TIDY_COLUMNS
    row = table[table["metric"] == "svcca"].iloc[0]
    assert row["n"] == 38 and row["comparison"] == "cross_lingual_text"
    stored = (x[:38].astype(np.float32), y[:38].astype(np.float32))  # stores hold float32
    assert row["score"] == pytest.approx(svcca(*(v.astype(np.float64) for v in stored)), abs=1e-12)
    assert row["score"] > 0.9 and row["null_mean"] < row["score"]


def test_cross_modal_pairs_named_taps(tmp_path, latent):
    rng, z = latent
    ids = np.arange(40)
    text = {t: rng.standard_normal((40, 3)) for t in ("layer00", "layer01", "encoder_out")}
    speech = {
        t: rng.standard_normal((40, 3))
        for t in ("layer00", "layer01", "pre_adaptor", "post_adaptor")
    }
    a = make(tmp_path / "t.zarr", ids, text, language="eng_Latn", modality="text")
    b = make(tmp_path / "s.zarr", ids, speech, language="eng_Latn", modality="speech")
    table = compare_stores(a, b, model="m", adapter="seamless_m4t_v2", options=OPTIONS)
    pairs = set(zip(table["tap_a"], table["tap_b"], strict=True))
    assert pairs == {
        ("layer00", "layer00"),
        ("layer01", "layer01"),
        ("encoder_out", "pre_adaptor"),
        ("encoder_out", "post_adaptor"),
    }
    assert set(table["comparison"]) == {"cross_modal"}
    assert len(table) == 4 * 2


@pytest.mark.parametrize("key", ["checkpoint", "init", "model", "recording"])
def test_stores_from_different_runs_are_refused(tmp_path, latent, key):
    rng, _ = latent
    ids = np.arange(10)
    a = make(
        tmp_path / "a.zarr",
        ids,
        {"layer00": rng.standard_normal((10, 3))},
        language="eng_Latn",
        modality="text",
    )
    b = make(
        tmp_path / "b.zarr",
        ids,
        {"layer00": rng.standard_normal((10, 3))},
        language="deu_Latn",
        modality="text",
        **{key: "other"},
    )
    with pytest.raises(StoreError, match=f"a.zarr and .*b.zarr come from different runs: {key}"):
        compare_stores(a, b, model="m", adapter="seamless_m4t_v2", options=OPTIONS)


@pytest.mark.parametrize(
    ("key", "value_a", "value_b"),
    [("dtype", "float32", "bfloat16"), ("seed", 0, 1), ("options", {}, {"layers": 2})],
)
def test_every_recorded_run_field_must_agree(tmp_path, latent, key, value_a, value_b):
    rng, _ = latent
    ids = np.arange(10)
    views = [
        make(
            tmp_path / f"{name}.zarr",
            ids,
            {"layer00": rng.standard_normal((10, 3))},
            language=language,
            modality="text",
            **{key: value},
        )
        for name, language, value in (("a", "eng_Latn", value_a), ("b", "deu_Latn", value_b))
    ]
    with pytest.raises(StoreError, match=f"come from different runs: {key} is"):
        compare_stores(*views, model="m", adapter="seamless_m4t_v2", options=OPTIONS)


def test_fields_older_stores_lack_are_compared_where_both_have_them(tmp_path, latent):
    """A store written before seed and options were recorded meets one that records them."""
    rng, z = latent
    ids = np.arange(40)
    old = make(tmp_path / "a.zarr", ids, {"layer00": z}, language="eng_Latn", modality="text")
    new = make(
        tmp_path / "b.zarr",
        ids,
        {"layer00": z @ rng.standard_normal((4, 4))},
        language="deu_Latn",
        modality="text",
        seed=0,
        options={},
    )
    table = compare_stores(old, new, model="m", adapter="seamless_m4t_v2", options=OPTIONS)
    svcca = table.loc[table["metric"] == "svcca", "score"]
    assert len(svcca) == 1 and svcca.iloc[0] > 0.999


def test_incomplete_or_disjoint_stores(tmp_path, latent):
    rng, _ = latent
    a = make(
        tmp_path / "a.zarr",
        np.arange(10),
        {"layer00": rng.standard_normal((10, 3))},
        language="eng_Latn",
        modality="text",
    )
    half = make(
        tmp_path / "h.zarr",
        np.arange(10),
        {"layer00": rng.standard_normal((10, 3))},
        language="deu_Latn",
        modality="text",
        finish=False,
    )
    with pytest.raises(StoreError, match="h.zarr: store is incomplete"):
        compare_stores(a, half, model="m", adapter="seamless_m4t_v2", options=OPTIONS)
    far = make(
        tmp_path / "f.zarr",
        np.arange(50, 60),
        {"layer00": rng.standard_normal((10, 3))},
        language="deu_Latn",
        modality="text",
    )
    with pytest.raises(ValueError, match="share 0 sentence ids"):
        compare_stores(a, far, model="m", adapter="seamless_m4t_v2", options=OPTIONS)
