"""Tests for gapscope.gaps against a small hand-built similarity table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gapscope.gaps import (
    GAP_COLUMNS,
    format_headline,
    gap_table,
    headline,
    length_adaptation_effect,
    tap_label,
    tap_sort_key,
)

NAN = math.nan
COLUMNS = [
    "model", "comparison", "lang_a", "modality_a", "tap_a", "lang_b", "modality_b", "tap_b",
    "metric", "score", "null_mean", "null_std", "heldout", "ci_low", "ci_high", "n", "k_a", "k_b",
]  # fmt: skip
MODALITIES = {
    "cross_modal": ("text", "speech"),
    "cross_lingual_text": ("text", "text"),
    "cross_lingual_speech": ("speech", "speech"),
}


def row(model, comparison, la, ta, lb, tb, score, null=NAN, n=200, metric="svcca"):
    ma, mb = MODALITIES[comparison]
    null_std = NAN if math.isnan(null) else 0.05
    return [model, comparison, la, ma, ta, lb, mb, tb, metric, score, null, null_std,
            NAN, NAN, NAN, n, 20, 20]  # fmt: skip


def cm(model, lang, ta, score, null=NAN, tb=None, n=200, metric="svcca"):
    return row(model, "cross_modal", lang, ta, lang, tb or ta, score, null, n, metric)


def xl(model, modality, la, lb, tap, score, null=NAN, n=200):
    return row(model, f"cross_lingual_{modality}", la, tap, lb, tap, score, null, n)


EN, DE, SW = "eng_Latn", "deu_Latn", "swh_Latn"
ROWS = [
    # m1: layers 00..02 cross-modal, layer03 only cross-lingual text
    cm("m1", EN, "layer00", 0.5, 0.1),
    cm("m1", DE, "layer00", 0.6, 0.2),
    cm("m1", SW, "layer00", 0.7, 0.3),
    cm("m1", EN, "layer01", 0.85, 0.5),
    cm("m1", DE, "layer01", 0.85, 0.5),
    cm("m1", SW, "layer01", 0.85, 0.5),
    cm("m1", EN, "layer02", 0.8, 0.4),
    cm("m1", DE, "layer02", 0.9, 0.4),
    cm("m1", SW, "layer02", 0.7, 0.4),
    cm("m1", EN, "layer02", 0.1, 0.0, metric="cka"),  # other metric: must be ignored
    xl("m1", "text", EN, DE, "layer02", 0.95, 0.5),
    xl("m1", "text", EN, SW, "layer02", 0.85, 0.5),
    xl("m1", "text", DE, SW, "layer02", 0.9, 0.5, n=150),
    xl("m1", "speech", EN, DE, "layer02", 0.6, 0.3),
    xl("m1", "speech", EN, SW, "layer02", 0.5),  # null missing
    xl("m1", "speech", DE, SW, "layer02", 0.4, 0.3),
    xl("m1", "text", EN, DE, "layer03", 0.99, 0.5),
    cm("m1", EN, "encoder_out", 0.70, tb="pre_adaptor"),
    cm("m1", DE, "encoder_out", 0.60, tb="pre_adaptor"),
    cm("m1", SW, "encoder_out", 0.50, tb="pre_adaptor"),
    cm("m1", EN, "encoder_out", 0.80, tb="post_adaptor"),
    cm("m1", DE, "encoder_out", 0.65, tb="post_adaptor"),
    cm("m1", SW, "encoder_out", 0.49, tb="post_adaptor"),
    xl("m1", "text", EN, DE, "encoder_out", 0.9),
    xl("m1", "speech", EN, DE, "post_adaptor", 0.7),
    # m2: fewer layers, a pooled tap, no nulls at all
    cm("m2", EN, "layer00", 0.3, n=100),
    cm("m2", EN, "layer01", 0.4, n=100),
    cm("m2", EN, "pooled", 0.9, n=100),
    cm("m2", DE, "pooled", 0.8, n=100),
    xl("m2", "text", EN, DE, "pooled", 0.95, n=100),
    xl("m2", "speech", EN, DE, "pooled", 0.85, n=100),
    xl("m2", "text", EN, DE, "layer01", 0.6, n=100),
]
GROUPS = {EN: "high", DE: "high", SW: "low"}


@pytest.fixture
def similarity() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=COLUMNS)


@pytest.fixture
def gaps(similarity) -> pd.DataFrame:
    return gap_table(similarity)


def at(gaps: pd.DataFrame, model: str, tap: str) -> pd.Series:
    hit = gaps[(gaps["model"] == model) & (gaps["tap"] == tap)]
    assert len(hit) == 1, f"expected one row for {model}/{tap}, got {len(hit)}"
    return hit.iloc[0]


def test_tap_label():
    assert tap_label("layer03", "layer03") == "layer03"
    assert tap_label("encoder_out", "post_adaptor") == "encoder_out~post_adaptor"


def test_tap_sort_key_orders_layers_named_unknown():
    taps = ["pooled", "layer10", "zeta", "layer2", "qformer_out", "encoder_out", "alpha",
            "layer100", "post_adaptor", "pre_adaptor", "qformer_in", "layer00"]  # fmt: skip
    assert sorted(taps, key=tap_sort_key) == [
        "layer00", "layer2", "layer10", "layer100", "encoder_out", "pre_adaptor",
        "post_adaptor", "pooled", "qformer_in", "qformer_out", "alpha", "zeta",
    ]  # fmt: skip
    labels = ["pre_adaptor", "encoder_out~post_adaptor", "encoder_out~pre_adaptor", "encoder_out"]
    assert sorted(labels, key=tap_sort_key) == [
        "encoder_out", "encoder_out~pre_adaptor", "encoder_out~post_adaptor", "pre_adaptor",
    ]  # fmt: skip


def test_gap_table_columns_and_order(gaps):
    assert list(gaps.columns) == GAP_COLUMNS
    assert list(gaps["model"]) == ["m1"] * 8 + ["m2"] * 3
    assert list(gaps["tap"]) == [
        "layer00", "layer01", "layer02", "layer03", "encoder_out",
        "encoder_out~pre_adaptor", "encoder_out~post_adaptor", "post_adaptor",
        "layer00", "layer01", "pooled",
    ]  # fmt: skip
    assert set(gaps["metric"]) == {"svcca"}


def test_gap_table_values_last_layer(gaps):
    r = at(gaps, "m1", "layer02")
    assert r["cross_modal"] == pytest.approx(0.8)  # the cka row (0.1) is not mixed in
    assert r["cross_modal_std"] == pytest.approx(0.1)
    assert r["cross_modal_null"] == pytest.approx(0.4)
    assert r["cross_modal_calibrated"] == pytest.approx(0.4)
    assert r["cross_lingual_text"] == pytest.approx(0.9)
    assert r["cross_lingual_text_std"] == pytest.approx(0.05)
    assert r["cross_lingual_text_null"] == pytest.approx(0.5)
    assert r["cross_lingual_text_calibrated"] == pytest.approx(0.4)
    assert r["cross_lingual_speech"] == pytest.approx(0.5)
    assert r["cross_lingual_speech_std"] == pytest.approx(0.1)
    # one of three speech pairs has no null: null and calibrated are NaN, not a partial mean
    assert math.isnan(r["cross_lingual_speech_null"])
    assert math.isnan(r["cross_lingual_speech_calibrated"])
    assert (r["n_cross_modal"], r["n_cross_lingual_text"], r["n_cross_lingual_speech"]) == (3, 3, 3)
    assert r["n_sentences"] == 150
    assert r["modality_gap"] == pytest.approx(0.1)
    assert r["modality_gap_calibrated"] == pytest.approx(0.0)


def test_gap_table_calibration_per_row(gaps):
    r = at(gaps, "m1", "layer00")
    assert r["cross_modal"] == pytest.approx(0.6)
    assert r["cross_modal_null"] == pytest.approx(0.2)
    assert r["cross_modal_calibrated"] == pytest.approx(0.4)
    assert r["cross_modal_std"] == pytest.approx(0.1)
    assert math.isnan(r["cross_lingual_text"])
    assert math.isnan(r["modality_gap"])


def test_gap_table_partial_taps_and_single_pairs(gaps):
    r = at(gaps, "m1", "layer03")
    assert r["cross_lingual_text"] == pytest.approx(0.99)
    assert math.isnan(r["cross_lingual_text_std"])  # single pair
    assert math.isnan(r["cross_modal"])
    assert r["n_cross_modal"] == 0 and r["n_cross_lingual_speech"] == 0
    r = at(gaps, "m1", "encoder_out~post_adaptor")
    assert r["cross_modal"] == pytest.approx((0.80 + 0.65 + 0.49) / 3)
    assert math.isnan(r["cross_lingual_text"])
    assert math.isnan(r["cross_modal_null"])
    r = at(gaps, "m2", "pooled")
    assert r["cross_modal"] == pytest.approx(0.85)
    assert r["modality_gap"] == pytest.approx(0.10)
    assert math.isnan(r["modality_gap_calibrated"])
    assert r["n_sentences"] == 100


def test_gap_table_other_metric_and_empty(similarity):
    cka = gap_table(similarity, metric="cka")
    assert list(cka["tap"]) == ["layer02"]
    assert cka.iloc[0]["cross_modal"] == pytest.approx(0.1)
    assert cka.iloc[0]["cross_modal_calibrated"] == pytest.approx(0.1)
    empty = gap_table(similarity, metric="pwcca")
    assert empty.empty and list(empty.columns) == GAP_COLUMNS


def test_length_adaptation_default_pairs(similarity):
    per_lang, per_group = length_adaptation_effect(similarity, groups=GROUPS)
    assert set(per_lang["model"]) == {"m1"}  # m2 has no encoder_out pairs
    deltas = dict(zip(per_lang["language"], per_lang["delta"], strict=True))
    assert deltas == pytest.approx({EN: 0.10, DE: 0.05, SW: -0.01})
    assert dict(zip(per_lang["language"], per_lang["group"], strict=True)) == GROUPS
    assert set(per_lang["before_tap"]) == {"encoder_out~pre_adaptor"}
    assert list(per_group["group"]) == ["high", "low"]
    high, low = per_group.iloc[0], per_group.iloc[1]
    assert high["n_languages"] == 2
    assert high["delta_mean"] == pytest.approx(0.075)
    assert high["delta_std"] == pytest.approx(0.025 * math.sqrt(2))
    assert high["before_mean"] == pytest.approx(0.65)
    assert high["after_mean"] == pytest.approx(0.725)
    assert low["delta_mean"] == pytest.approx(-0.01)
    assert math.isnan(low["delta_std"])


def test_length_adaptation_overrides(similarity):
    per_lang, per_group = length_adaptation_effect(
        similarity,
        before=("layer00", "layer00"),
        after=("layer02", "layer02"),
        per_model={"m2": (("layer01", "layer01"), ("pooled", "pooled"))},
    )
    m1 = per_lang[per_lang["model"] == "m1"].set_index("language")["delta"]
    assert m1.to_dict() == pytest.approx({DE: 0.3, EN: 0.3, SW: 0.0})
    m2 = per_lang[per_lang["model"] == "m2"].set_index("language")
    assert m2.loc[EN, "delta"] == pytest.approx(0.5)
    assert math.isnan(m2.loc[DE, "delta"])  # only the "after" side exists
    assert m2.loc[DE, "after"] == pytest.approx(0.8)
    g2 = per_group[per_group["model"] == "m2"].iloc[0]
    assert (g2["group"], g2["n_languages"]) == ("all", 1)
    assert g2["delta_mean"] == pytest.approx(0.5)


def test_headline_picks_last_layer_and_best(gaps):
    table = headline(gaps)
    m1 = table[table["model"] == "m1"].set_index("at")
    last = m1.loc["last layer"]
    assert last["tap"] == "layer02"  # layer03 has no cross-modal score
    assert last["cross_modal"] == pytest.approx(0.8)
    assert last["cross_lingual_text"] == pytest.approx(0.9)
    assert last["cross_lingual_speech"] == pytest.approx(0.5)
    assert last["n_sentences"] == 150
    assert m1.loc["best", "tap"] == "layer01"
    m2 = table[table["model"] == "m2"].set_index("at")
    assert m2.loc["last layer", "tap"] == "layer01"
    assert m2.loc["best", "tap"] == "pooled"
    assert m2.loc["best", "cross_lingual_speech"] == pytest.approx(0.85)


def test_headline_pair_label_reads_each_side():
    rows = [
        cm("m3", EN, "layer01", 0.5),
        cm("m3", EN, "encoder_out", 0.9, tb="post_adaptor"),
        xl("m3", "text", EN, DE, "encoder_out", 0.7),
        xl("m3", "speech", EN, DE, "post_adaptor", 0.6),
    ]
    table = headline(gap_table(pd.DataFrame(rows, columns=COLUMNS))).set_index("at")
    best = table.loc["best"]
    assert best["tap"] == "encoder_out~post_adaptor"
    assert best["cross_lingual_text"] == pytest.approx(0.7)
    assert best["cross_lingual_speech"] == pytest.approx(0.6)
    assert best["modality_gap"] == pytest.approx(-0.2)


def test_format_headline_fixed_width(gaps):
    text = format_headline(gaps)
    lines = text.splitlines()
    assert len(lines) == 2 + 4  # header, rule, 2 rows per model
    header = lines[0]
    col = header.index("cross-modal")
    m1_last = next(line for line in lines if "layer02" in line)
    assert m1_last[col:].startswith("0.800 (null 0.400)")
    assert "0.500 (null   n/a)" in m1_last
    assert "+0.100" in m1_last and "150" in m1_last and "svcca" in m1_last
    assert format_headline(gap_table(pd.DataFrame(columns=COLUMNS))) == "(no cross-modal scores)"
