"""Tests for gapscope.figures: files are written, valid and reflect the data."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from itertools import combinations
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from gapscope.figures import (
    NothingToPlot,
    default_heatmap_taps,
    language_matrix,
    placeholder_figure,
    plot_language_heatmap,
    plot_language_heatmaps,
    plot_layer_curves,
    plot_length_adaptation,
    plot_modality_vs_language,
    plot_model_comparison,
)
from gapscope.gaps import length_adaptation_effect, modality_vs_language

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


def test_cross_lingual_curves_subset(tmp_path):
    stem = tmp_path / "cross_lingual_curves"
    paths = plot_layer_curves(
        make_similarity(), stem, comparisons=("cross_lingual_text", "cross_lingual_speech")
    )
    svg = check_outputs(paths, stem)
    assert "cross-lingual text vs cross-lingual speech SVCCA by layer" in svg
    assert "mean ±1 std over pairs; dashed: shuffled-pairing null" in svg
    assert "cross-modal" not in svg
    with pytest.raises(NothingToPlot):
        plot_layer_curves(make_similarity(), stem, comparisons=("nope",))


def test_model_comparison(tmp_path):
    stem = tmp_path / "models"
    svg = check_outputs(plot_model_comparison(make_similarity(), stem), stem)
    assert svg.count('id="axes_') == 2  # raw and calibrated
    assert "relative depth (layer / last layer)" in svg  # m1 has 3 layers, m2 has 5
    assert "calibrated: score minus null" in svg and "m1 (N=120 sentences" in svg
    same_depth = make_similarity(layers=(4, 4), with_null=False)
    svg = check_outputs(plot_model_comparison(same_depth, stem), stem)
    assert svg.count('id="axes_') == 1 and ">layer<" in svg
    with pytest.raises(NothingToPlot):
        plot_model_comparison(make_similarity(), stem, comparison="nope")


def test_default_heatmap_taps():
    data = make_similarity()
    assert default_heatmap_taps(data, model="m2") == ["layer00", "layer02", "layer04"]
    assert default_heatmap_taps(data, model="m1") == ["layer00", "layer01", "layer02"]
    assert default_heatmap_taps(data, model="none") == []


def test_language_heatmaps(tmp_path):
    stem = tmp_path / "heatmaps" / "m2"
    svg = check_outputs(plot_language_heatmaps(make_similarity(), stem, model="m2"), stem)
    assert svg.count('id="axes_') == 6 + 1  # 2 modalities x 3 taps + the colour bar
    for text in ("text, layer00", "speech, layer04", "null 0.30", "swh_Latn · low"):
        assert text in svg
    assert "ordered by resource group" in svg
    # a tap only one modality has: the other panel says so
    svg = check_outputs(
        plot_language_heatmaps(
            make_similarity(), stem, model="m2", taps=["layer01", "nope"], order_by="family"
        ),
        stem,
    )
    assert "no text pairs" in svg and "Atlantic-Congo" in svg
    with pytest.raises(NothingToPlot):
        plot_language_heatmaps(make_similarity(), stem, model="m2", taps=["nope"])


def _adaptation_rows():
    rows = []
    for model, shift in (("m1", 0.0), ("m2", 0.05)):
        for i, lang in enumerate(LANGS):
            for tap, score in (("pre_adaptor", 0.6), ("post_adaptor", 0.7 + shift - 0.05 * i)):
                rows.append(
                    _row(model, "cross_modal", lang, lang, ("text", "speech"),
                         ("encoder_out", tap), score, 0.5, 0.05, 100, (10, 10))
                )  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def test_length_adaptation_figure(tmp_path):
    groups = {"eng_Latn": "high", "deu_Latn": "high", "swh_Latn": "low"}
    per_language, _ = length_adaptation_effect(_adaptation_rows(), groups=groups)
    stem = tmp_path / "length_adaptation"
    svg = check_outputs(plot_length_adaptation(per_language, stem), stem)
    assert svg.count('id="axes_') == 2  # raw and calibrated delta
    for text in ("high", "low", "all", "(3 lang.)", "Δ cross-modal SVCCA (after − before)"):
        assert text in svg
    assert "m1 (encoder_out~pre_adaptor → encoder_out~post_adaptor)" in svg
    with pytest.raises(NothingToPlot):
        plot_length_adaptation(per_language.iloc[:0], stem)


def test_modality_vs_language_figure(tmp_path):
    stem = tmp_path / "modality_vs_language"
    per_language = modality_vs_language(make_similarity())
    svg = check_outputs(plot_modality_vs_language(per_language, stem), stem)
    assert svg.count('id="axes_') == 2
    assert "modality gap &gt; language gap" in svg or "modality gap > language gap" in svg
    assert "m1 (layer02, N=120)" in svg and "m2 (layer04, N=120)" in svg
    no_text = per_language.assign(cross_lingual_text=math.nan)
    with pytest.raises(NothingToPlot):
        plot_modality_vs_language(no_text, stem)


def test_placeholder(tmp_path):
    stem = tmp_path / "empty"
    paths = placeholder_figure(stem, "no cross-lingual pairs")
    assert all(p.stat().st_size > 0 for p in paths)
    assert "no cross-lingual pairs" in paths[0].read_text()
