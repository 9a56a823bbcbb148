"""Tests for gapscope.gaps against a small hand-built similarity table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gapscope.gaps import (
    CROSS_LINGUAL_COLUMNS,
    CROSS_MODAL_COLUMNS,
    GAP_COLUMNS,
    LENGTH_RATIO_COLUMNS,
    MODALITY_LANGUAGE_COLUMNS,
    cross_lingual_table,
    cross_modal_table,
    format_headline,
    format_length_adaptation,
    gap_table,
    group_summary,
    headline,
    language_info,
    language_order,
    length_adaptation_effect,
    length_ratio_groups,
    length_ratios,
    length_statistics,
    modality_vs_language,
    modality_vs_language_groups,
)
from gapscope.gaps import length_taps as gaps_length_taps
from gapscope.html_tables import html_page
from gapscope.stages.common import ConfigError
from gapscope.stages.summarize import (
    family_length_taps,
    length_adaptation_by_model,
    length_adaptation_pairs,
    length_taps_by_model,
    summary_metric,
)
from gapscope.taps import tap_label, tap_sort_key

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


# --- per-language tables (values hand-computed from ROWS) ------------------------------


def one(table: pd.DataFrame, **where) -> pd.Series:
    hit = table
    for column, value in where.items():
        hit = hit[hit[column] == value]
    assert len(hit) == 1, f"expected one row for {where}, got {len(hit)}"
    return hit.iloc[0]


def test_language_info_and_order():
    info = language_info([EN, SW, "xxx_Latn"]).set_index("language")
    assert info.loc[EN, "group"] == "high" and info.loc[SW, "group"] == "low"
    assert info.loc[SW, "family"] == "Atlantic-Congo" and info.loc[SW, "script"] == "Latn"
    assert info.loc["xxx_Latn", "group"] == "unassigned"
    codes = ["swh_Latn", "eng_Latn", "amh_Ethi", "deu_Latn", "hin_Deva"]
    assert language_order(codes, "resource") == [
        "deu_Latn", "eng_Latn", "hin_Deva", "amh_Ethi", "swh_Latn",
    ]  # fmt: skip
    assert language_order(codes, "family")[:2] == ["amh_Ethi", "swh_Latn"]
    assert language_order(codes, "config") == codes
    with pytest.raises(ValueError, match="language order"):
        language_order(codes, "size")


def test_cross_modal_table(similarity):
    table = cross_modal_table(similarity)
    assert list(table.columns) == CROSS_MODAL_COLUMNS
    assert set(table["metric"]) == {"svcca"}  # the cka row is not mixed in
    r = one(table, model="m1", tap="layer02", language=EN)
    assert (r["score"], r["null_mean"], r["calibrated"]) == pytest.approx((0.8, 0.4, 0.4))
    assert (r["group"], r["family"], r["script"]) == ("high", "Indo-European", "Latn")
    assert (r["n"], r["k_text"], r["k_speech"]) == (200, 20, 20)
    r = one(table, model="m1", tap="encoder_out~post_adaptor", language=SW)
    assert (r["text_tap"], r["speech_tap"]) == ("encoder_out", "post_adaptor")
    assert r["score"] == pytest.approx(0.49) and math.isnan(r["calibrated"])
    m1 = table[table["model"] == "m1"]
    # tap order, then languages by resource group (high before low), then code
    assert list(m1["tap"])[:3] == ["layer00"] * 3
    assert list(m1["language"])[:3] == [DE, EN, SW]


def test_cross_modal_table_swaps_speech_first_rows():
    rows = [row("m", "cross_modal", EN, "post_adaptor", EN, "encoder_out", 0.5, 0.1)]
    rows[0][3], rows[0][6] = "speech", "text"
    rows[0][16], rows[0][17] = 7, 9  # k_a (speech), k_b (text)
    r = cross_modal_table(pd.DataFrame(rows, columns=COLUMNS)).iloc[0]
    assert (r["text_tap"], r["speech_tap"], r["tap"]) == (
        "encoder_out", "post_adaptor", "encoder_out~post_adaptor",
    )  # fmt: skip
    assert (r["k_text"], r["k_speech"]) == (9, 7)


def test_cross_lingual_table(similarity):
    table = cross_lingual_table(similarity)
    assert list(table.columns) == CROSS_LINGUAL_COLUMNS
    r = one(table, model="m1", modality="text", tap="layer02", scope="all_pairs")
    assert (r["n_pairs"], r["n_languages"], r["n_sentences"]) == (3, 3, 150)
    assert r["mean"] == pytest.approx(0.9) and r["std"] == pytest.approx(0.05)
    assert (r["null"], r["calibrated"]) == pytest.approx((0.5, 0.4))
    assert r["calibrated_std"] == pytest.approx(0.05)
    assert (r["k_min"], r["k_max"]) == (20, 20)
    r = one(table, model="m1", modality="text", tap="layer02", scope="english_centric")
    assert r["n_pairs"] == 2 and r["n_sentences"] == 200
    assert r["mean"] == pytest.approx(0.9) and r["std"] == pytest.approx(0.1 / math.sqrt(2))
    r = one(table, model="m1", modality="speech", tap="layer02", scope="all_pairs")
    assert r["mean"] == pytest.approx(0.5)
    assert math.isnan(r["null"]) and math.isnan(r["calibrated"])  # one pair lacks a null
    r = one(table, model="m1", modality="speech", tap="layer02", scope="english_centric")
    assert r["mean"] == pytest.approx(0.55)
    single = one(table, model="m1", modality="text", tap="layer03", scope="all_pairs")
    assert single["n_pairs"] == 1 and math.isnan(single["std"])
    first = table.iloc[0]
    assert (first["model"], first["modality"], first["scope"]) == ("m1", "text", "all_pairs")
    no_english = similarity[(similarity["lang_a"] != EN) & (similarity["lang_b"] != EN)]
    assert set(cross_lingual_table(no_english)["scope"]) == {"all_pairs"}


def test_modality_vs_language(similarity):
    table = modality_vs_language(similarity)
    assert list(table.columns) == MODALITY_LANGUAGE_COLUMNS
    en = one(table, model="m1", tap="layer02", language=EN)
    assert en["cross_modal"] == pytest.approx(0.8)
    assert en["cross_lingual_text"] == pytest.approx(0.9)  # (0.95 + 0.85) / 2
    assert en["cross_lingual_text_calibrated"] == pytest.approx(0.4)
    assert en["n_text_pairs"] == 2
    assert en["cross_lingual_speech"] == pytest.approx(0.55)  # (0.6 + 0.5) / 2
    assert math.isnan(en["cross_lingual_speech_null"])  # EN-SW speech has no null
    assert en["modality_gap"] == pytest.approx(0.1)
    assert en["modality_gap_calibrated"] == pytest.approx(0.0)
    assert en["text_minus_speech"] == pytest.approx(0.35)
    de = one(table, model="m1", tap="layer02", language=DE)
    assert de["modality_gap"] == pytest.approx(0.925 - 0.9)
    assert de["cross_lingual_speech_calibrated"] == pytest.approx(0.2)  # (0.3 + 0.1) / 2
    assert de["text_minus_speech_calibrated"] == pytest.approx(0.425 - 0.2)
    sw = one(table, model="m1", tap="layer02", language=SW)
    assert sw["modality_gap"] == pytest.approx(0.875 - 0.7)
    # pair labels read each side at its own tap: text at encoder_out, speech at post_adaptor
    en_post = one(table, model="m1", tap="encoder_out~post_adaptor", language=EN)
    assert en_post["cross_lingual_text"] == pytest.approx(0.9)
    assert en_post["cross_lingual_speech"] == pytest.approx(0.7)
    assert en_post["modality_gap"] == pytest.approx(0.9 - 0.8)
    # no cross-lingual rows at all: NaN, zero pairs
    lone = one(table, model="m1", tap="layer00", language=EN)
    assert math.isnan(lone["cross_lingual_text"]) and lone["n_text_pairs"] == 0


def test_modality_vs_language_groups(similarity):
    groups = modality_vs_language_groups(modality_vs_language(similarity))
    at_layer = groups[(groups["model"] == "m1") & (groups["tap"] == "layer02")]
    assert list(at_layer["group"]) == ["high", "low", "all"]
    high = one(at_layer, group="high")
    assert high["n_languages"] == 2
    assert high["modality_gap_mean"] == pytest.approx((0.1 + 0.025) / 2)
    assert high["modality_gap_std"] == pytest.approx(0.075 / math.sqrt(2))
    assert high["cross_modal_calibrated_mean"] == pytest.approx(0.45)
    assert math.isnan(high["cross_lingual_speech_calibrated_mean"])  # EN lacks it: strict
    assert high["n_modality_gap_larger"] == 2
    low = one(at_layer, group="low")
    assert low["n_languages"] == 1 and math.isnan(low["modality_gap_std"])
    overall = one(at_layer, group="all")
    assert overall["n_languages"] == 3 and overall["n_modality_gap_larger"] == 3
    assert overall["cross_modal_mean"] == pytest.approx(0.8)
    assert overall["cross_modal_std"] == pytest.approx(0.1)


def test_group_summary_strict_and_ordered():
    table = pd.DataFrame(
        {
            "k": ["a"] * 4,
            "group": ["low", "high", "high", "medium"],
            "x": [1.0, 2.0, 4.0, math.nan],
        }
    )
    out = group_summary(table, keys=["k"], values=["x"])
    assert list(out["group"]) == ["high", "medium", "low", "all"]
    assert list(out["n_languages"]) == [2, 1, 1, 4]
    high = one(out, group="high")
    assert high["x_mean"] == pytest.approx(3.0) and high["x_std"] == pytest.approx(math.sqrt(2))
    assert math.isnan(one(out, group="medium")["x_mean"])
    assert math.isnan(one(out, group="all")["x_mean"])  # one language lacks x
    assert group_summary(table.iloc[:0], keys=["k"], values=["x"]).empty


def test_length_adaptation_calibrated_and_overall():
    rows = [
        cm("m", EN, "encoder_out", 0.70, 0.60, tb="pre_adaptor"),
        cm("m", DE, "encoder_out", 0.60, 0.40, tb="pre_adaptor"),
        cm("m", SW, "encoder_out", 0.50, 0.45, tb="pre_adaptor"),
        cm("m", EN, "encoder_out", 0.80, 0.50, tb="post_adaptor", n=180),
        cm("m", DE, "encoder_out", 0.65, 0.40, tb="post_adaptor"),
        cm("m", SW, "encoder_out", 0.49, 0.50, tb="post_adaptor"),
        cm("other", EN, "encoder_out", 0.1, tb="pre_adaptor"),
    ]
    groups = {EN: "high", DE: "high", SW: "low"}
    per_lang, per_group = length_adaptation_effect(
        pd.DataFrame(rows, columns=COLUMNS), groups=groups, models=["m"], overall=True
    )
    assert set(per_lang["model"]) == {"m"}
    en = one(per_lang, language=EN)
    assert (en["before_calibrated"], en["after_calibrated"]) == pytest.approx((0.1, 0.3))
    assert en["delta"] == pytest.approx(0.1) and en["delta_calibrated"] == pytest.approx(0.2)
    assert en["n"] == 180
    sw = one(per_lang, language=SW)
    assert sw["delta_calibrated"] == pytest.approx(-0.01 - 0.05)
    assert list(per_group["group"]) == ["high", "low", "all"]
    high = one(per_group, group="high")
    assert high["delta_calibrated_mean"] == pytest.approx((0.2 + 0.05) / 2)
    assert high["before_std"] == pytest.approx(0.1 / math.sqrt(2))
    overall = one(per_group, group="all")
    assert overall["n_languages"] == 3
    assert overall["delta_mean"] == pytest.approx((0.1 + 0.05 - 0.01) / 3)
    text = format_length_adaptation(per_group)
    assert "encoder_out~pre_adaptor -> encoder_out~post_adaptor" in text
    assert "+0.125" in text  # high: calibrated delta mean
    assert format_length_adaptation(per_group.iloc[:0]) == "(no length-adaptation taps)"


def test_length_adaptation_pairs_from_families():
    before, after = length_adaptation_pairs("seamless_m4t_v2")
    assert before == ("encoder_out", "pre_adaptor") and after == ("encoder_out", "post_adaptor")
    assert length_adaptation_pairs("no_such_adapter") is None
    assert family_length_taps("seamless_m4t_v2") == ("encoder_out", "pre_adaptor", "post_adaptor")
    assert family_length_taps("no_such_adapter") == ("layer00", "layer00", None)
    assert gaps_length_taps(None) == ("layer00", "layer00", None)


# --- lengths ---------------------------------------------------------------------------

LENGTHS = {
    # text: ids 1..3; speech: the same ids in another order plus an id text lacks
    ("m", EN, "text"): (np.array([1, 2, 3]), {"encoder_out": np.array([10, 20, 40])}),
    ("m", EN, "speech"): (
        np.array([3, 2, 1, 4]),
        {"pre_adaptor": np.array([400, 200, 100, 999]), "post_adaptor": np.array([50, 25, 12, 9])},
    ),
    ("m", SW, "text"): (np.array([1, 2]), {"encoder_out": np.array([5, 5])}),
    ("m", SW, "speech"): (
        np.array([1, 2]),
        {"pre_adaptor": np.array([100, 120]), "post_adaptor": np.array([10, 20])},
    ),
}
TAPS = {"m": ("encoder_out", "pre_adaptor", "post_adaptor")}


def test_length_statistics():
    stats = length_statistics(LENGTHS)
    r = one(stats, language=EN, modality="speech", tap="pre_adaptor")
    assert r["n_sentences"] == 4 and r["mean"] == pytest.approx(424.75)
    assert (r["median"], r["min"], r["max"]) == (300, 100, 999)
    assert r["std"] == pytest.approx(np.std([400, 200, 100, 999], ddof=1))
    assert r["group"] == "high"
    assert list(stats["modality"])[:1] == ["text"]


def test_length_ratios_align_sentence_ids():
    ratios = length_ratios(LENGTHS, TAPS)
    assert list(ratios.columns) == LENGTH_RATIO_COLUMNS
    en = one(ratios, language=EN)
    assert en["n_sentences"] == 3  # id 4 has no text
    assert en["text_tokens"] == pytest.approx(70 / 3)
    assert en["speech_before"] == pytest.approx(700 / 3)
    assert en["ratio_before"] == pytest.approx(10.0) and en["ratio_before_std"] == 0
    assert en["ratio_after"] == pytest.approx((1.2 + 1.25 + 1.25) / 3)
    assert en["reduction"] == pytest.approx((100 / 12 + 8 + 8) / 3)
    sw = one(ratios, language=SW)
    assert sw["ratio_before"] == pytest.approx(22.0)
    assert sw["reduction"] == pytest.approx(8.0)
    groups = length_ratio_groups(ratios)
    assert list(groups["group"]) == ["high", "low", "all"]
    overall = one(groups, group="all")
    assert overall["ratio_before_mean"] == pytest.approx(16.0)
    assert overall["ratio_before_std"] == pytest.approx(np.std([10, 22], ddof=1))


def test_length_ratios_without_adaptation_taps():
    lengths = {
        ("m", EN, "text"): (np.array([1]), {"layer00": np.array([4])}),
        ("m", EN, "speech"): (np.array([1]), {"layer00": np.array([40])}),
    }
    r = length_ratios(lengths).iloc[0]
    assert r["ratio_before"] == pytest.approx(10.0)
    assert r["speech_after_tap"] == "" and math.isnan(r["ratio_after"])


# --- HTML ------------------------------------------------------------------------------


def test_html_page_escapes_everything():
    evil = "<script>alert(1)</script>"
    table = pd.DataFrame({"model": [evil], f"x{evil}": [0.123456], "modality_gap": [0.5]})
    page = html_page(f"title {evil}", [(f"head {evil}", table, f"note {evil}")], intro=evil)
    assert "<script" not in page.lower()
    assert page.count("&lt;script&gt;") >= 5
    assert "default-src 'none'" in page  # CSP: no scripts even if something slipped through
    assert "0.1235" in page and "modality gap exceeds the language gap" in page
    assert "<em>no rows</em>" in html_page("t", [("empty", table.iloc[:0], "")])


# --- workflow glue ---------------------------------------------------------------------


def test_summary_metric():
    config = {"similarity": {"metrics": ["svcca", "cka"]}}
    assert summary_metric(config) == "svcca"
    assert summary_metric({**config, "summarize": {"metric": "cka"}}) == "cka"
    assert summary_metric({**config, "summarize": {"metric": None}}) == "svcca"
    with pytest.raises(ConfigError, match="summarize.metric"):
        summary_metric({**config, "summarize": {"metric": "pwcca"}})


def test_length_taps_by_model():
    models = {"s": {"adapter": "seamless_m4t_v2"}, "x": {"adapter": "unknown"}}
    assert length_adaptation_by_model(models) == {
        "s": [["encoder_out", "pre_adaptor"], ["encoder_out", "post_adaptor"]]
    }
    assert length_taps_by_model(models) == {
        "s": ["encoder_out", "pre_adaptor", "post_adaptor"],
        "x": ["layer00", "layer00", None],
    }
