"""Tests for gapscope.figures: files are written, valid and reflect the data."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from gapscope.figures import language_matrix, plot_language_heatmap, plot_layer_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
COLUMNS = [
    "model", "comparison", "lang_a", "modality_a", "tap_a", "lang_b", "modality_b", "tap_b",
    "metric", "score", "null_mean", "null_std", "heldout", "ci_low", "ci_high", "n", "k_a", "k_b",
]  # fmt: skip
LANGS = ["eng_Latn", "deu_Latn", "swh_Latn"]


def _row(model, comparison, la, lb, modalities, taps, score, null, null_std, n, k):
    return [model, comparison, la, modalities[0], taps[0], lb, modalities[1], taps[1], "svcca",
            score, null, null_std, math.nan, math.nan, math.nan, n, *k]  # fmt: skip


def make_similarity(models=("m1", "m2"), layers=(3, 5), with_null=True) -> pd.DataFrame:
    """Cross-modal and cross-lingual rows for every layer; scores rise with depth.

    Score at layer L: cross-modal 0.4 + 0.1 L + 0.01 i (i = language index), cross-lingual
    text/speech 0.4 + 0.1 L +/- 0.1 + 0.01 i (i = pair index). N is 100..120, k is 8..15.
    """
    null, null_std = (0.3, 0.05) if with_null else (math.nan, math.nan)
    rows = []
    for model, n_layers in zip(models, layers, strict=False):
        for layer in range(n_layers):
            taps = (f"layer{layer:02d}",) * 2
            base = 0.4 + 0.1 * layer
            for i, lang in enumerate(LANGS):
                score = base + 0.01 * i
                rows.append(
                    _row(model, "cross_modal", lang, lang, ("text", "speech"), taps, score,
                         null, null_std, 120, (10, 12))
                )  # fmt: skip
            for modality, offset in (("text", 0.1), ("speech", -0.1)):
                for i, (a, b) in enumerate(combinations(LANGS, 2)):
                    score = base + offset + 0.01 * i
                    rows.append(
                        _row(model, f"cross_lingual_{modality}", a, b, (modality,) * 2, taps,
                             score, null, null_std, 100 + i, (8, 15))
                    )  # fmt: skip
        rows.append(
            _row(model, "cross_modal", "eng_Latn", "eng_Latn", ("text", "speech"),
                 ("encoder_out", "post_adaptor"), 0.9, math.nan, math.nan, 120, (10, 12))
        )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def check_outputs(paths: list[Path], stem: Path) -> str:
    """Assert SVG + PNG exist, are non-empty and well-formed; return the SVG text."""
    assert sorted(p.name for p in paths) == sorted([stem.name + ".svg", stem.name + ".png"])
    by_ext = {p.suffix: p for p in paths}
    for path in paths:
        assert path.is_file() and path.stat().st_size > 1000
    assert by_ext[".png"].read_bytes().startswith(PNG_MAGIC)
    root = ET.parse(by_ext[".svg"]).getroot()
    assert root.tag.endswith("svg")
    return by_ext[".svg"].read_text()


def test_layer_curves_two_models(tmp_path):
    stem = tmp_path / "figs" / "layer_curves.svcca"  # dot in the stem must survive
    backend = matplotlib.get_backend()
    svg = check_outputs(plot_layer_curves(make_similarity(), stem), stem)
    assert matplotlib.get_backend() == backend  # the global backend is left alone
    assert svg.count('id="axes_') == 2  # one panel per model
    assert "SVCCA (mean over pairs)" in svg and ">layer<" in svg
    assert "N=100-120 sentences, k=8-15" in svg  # caption-ready N and k ranges
    for label in ("cross-modal", "cross-lingual text", "cross-lingual speech"):
        assert label in svg
    assert "m1 (" in svg and "m2 (" in svg


def test_layer_curves_single_model_without_nulls(tmp_path):
    data = make_similarity(models=("only",), layers=(4,), with_null=False)
    stem = tmp_path / "single"
    svg = check_outputs(plot_layer_curves(data, stem), stem)
    assert svg.count('id="axes_') == 1
    assert "null" not in svg  # no null lines, legend entries or caption note


def test_layer_curves_nulls_add_dashed_lines(tmp_path):
    a = check_outputs(plot_layer_curves(make_similarity(), tmp_path / "a"), tmp_path / "a")
    b = check_outputs(
        plot_layer_curves(make_similarity(with_null=False), tmp_path / "b"), tmp_path / "b"
    )
    assert a.count("stroke-dasharray") > b.count("stroke-dasharray")


def test_layer_curves_is_deterministic(tmp_path):
    data = make_similarity()
    first = plot_layer_curves(data, tmp_path / "x")
    svg1 = first[0].read_bytes()
    plot_layer_curves(data, tmp_path / "x")
    assert first[0].read_bytes() == svg1


def test_layer_curves_rejects_missing_metric(tmp_path):
    with pytest.raises(ValueError, match="cka"):
        plot_layer_curves(make_similarity(), tmp_path / "none", metric="cka")


def test_language_heatmap(tmp_path):
    stem = tmp_path / "heat"
    paths = plot_language_heatmap(
        make_similarity(), stem, model="m1", tap="layer02", modality="speech",
        order=["swh_Latn", "eng_Latn", "deu_Latn"],
    )  # fmt: skip
    svg = check_outputs(paths, stem)
    assert "cross-lingual speech SVCCA" in svg and "swh_Latn" in svg
    with pytest.raises(ValueError, match="cross_lingual_text"):
        plot_language_heatmap(make_similarity(), stem, model="m1", tap="nope", modality="text")


def test_language_matrix_symmetric_fill():
    data = make_similarity()
    m = language_matrix(data, model="m1", tap="layer02", modality="text")
    assert list(m.index) == sorted(LANGS) and list(m.columns) == sorted(LANGS)
    # layer02 text: base 0.6 + 0.1; pairs (eng,deu)=0.70, (eng,swh)=0.71, (deu,swh)=0.72
    assert m.loc["eng_Latn", "deu_Latn"] == pytest.approx(0.70)
    assert m.loc["deu_Latn", "eng_Latn"] == pytest.approx(0.70)
    assert m.loc["swh_Latn", "eng_Latn"] == pytest.approx(0.71)
    assert m.loc["swh_Latn", "deu_Latn"] == pytest.approx(0.72)
    assert all(m.loc[lang, lang] == 1.0 for lang in LANGS)
    ordered = language_matrix(
        data, model="m1", tap="layer02", modality="text", order=["swh_Latn", "eng_Latn", "xxx_Latn"]
    )
    assert list(ordered.index) == ["swh_Latn", "eng_Latn", "xxx_Latn"]
    assert ordered.loc["swh_Latn", "eng_Latn"] == pytest.approx(0.71)
    assert math.isnan(ordered.loc["xxx_Latn", "eng_Latn"])
    assert ordered.loc["xxx_Latn", "xxx_Latn"] == 1.0


def test_language_matrix_averages_both_directions():
    data = make_similarity()
    sel = (
        (data["model"] == "m1") & (data["tap_a"] == "layer01")
        & (data["comparison"] == "cross_lingual_speech")
        & (data["lang_a"] == "eng_Latn") & (data["lang_b"] == "deu_Latn")
    )  # fmt: skip
    reverse = data[sel].copy()
    reverse[["lang_a", "lang_b"]] = reverse[["lang_b", "lang_a"]].to_numpy()
    reverse["score"] = 0.0
    m = language_matrix(pd.concat([data, reverse]), model="m1", tap="layer01", modality="speech")
    # forward score: 0.4 + 0.1 - 0.1 + 0.00 = 0.40; reverse 0.0 -> mean 0.20, both cells
    assert m.loc["eng_Latn", "deu_Latn"] == pytest.approx(0.20)
    assert m.loc["deu_Latn", "eng_Latn"] == pytest.approx(0.20)
