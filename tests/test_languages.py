"""Tests for the shipped language table (gapscope/data/languages.tsv) and its loader."""

import dataclasses
import re
import shutil
import subprocess
from importlib import resources

import pytest

from gapscope.languages import Language, UnknownLanguageError, by_fleurs, get, load_table

FLEURS_CONFIGS = """
af_za am_et ar_eg as_in ast_es az_az be_by bg_bg bn_in bs_ba ca_es ceb_ph ckb_iq cmn_hans_cn
cs_cz cy_gb da_dk de_de el_gr en_us es_419 et_ee fa_ir ff_sn fi_fi fil_ph fr_fr ga_ie gl_es gu_in
ha_ng he_il hi_in hr_hr hu_hu hy_am id_id ig_ng is_is it_it ja_jp jv_id ka_ge kam_ke kea_cv kk_kz
km_kh kn_in ko_kr ky_kg lb_lu lg_ug ln_cd lo_la lt_lt luo_ke lv_lv mi_nz mk_mk ml_in mn_mn mr_in
ms_my mt_mt my_mm nb_no ne_np nl_nl nso_za ny_mw oc_fr om_et or_in pa_in pl_pl ps_af pt_br ro_ro
ru_ru sd_in sk_sk sl_si sn_zw so_so sr_rs sv_se sw_ke ta_in te_in tg_tj th_th tr_tr uk_ua umb_ao
ur_pk uz_uz vi_vn wo_sn xh_za yo_ng yue_hant_hk zu_za
""".split()

# sonar_speech_encoder_<code> models listed in the facebookresearch/SONAR README.
SONAR_SPEECH = set(
    """
arb asm bel ben bos bul cat ces cmn cym dan deu est fin fra guj heb hin hrv ind ita jpn kan kor
lao lit lvs mal mar mkd mlt npi nld ory pan pes pol por ron rus slk slv snd srp spa swe swh tam
tel tgl tha tur ukr urd uzn vie yue eng
""".split()
)

FLORES_RE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
CODE3_RE = re.compile(r"^[a-z]{3}$")


@pytest.fixture(scope="module")
def table() -> dict[str, Language]:
    return load_table()


def test_row_count_and_fleurs_coverage(table: dict[str, Language]) -> None:
    assert len(FLEURS_CONFIGS) == 102
    assert len(table) == 102
    fleurs = [lang.fleurs for lang in table.values()]
    assert len(set(fleurs)) == len(fleurs)
    assert sorted(fleurs) == sorted(FLEURS_CONFIGS)


def test_codes_unique_well_formed_and_sorted(table: dict[str, Language]) -> None:
    codes = list(table)
    assert codes == sorted(codes)
    assert all(code == lang.flores for code, lang in table.items())
    bad = [c for c in codes if not FLORES_RE.match(c)]
    assert not bad, bad
    # The dict would silently drop a duplicate; check the file itself.
    text = resources.files("gapscope").joinpath("data/languages.tsv").read_text("utf-8")
    rows = [ln.split("\t")[0] for ln in text.splitlines() if ln and not ln.startswith("#")]
    assert rows[0] == "flores"
    assert len(rows[1:]) == len(set(rows[1:])) == 102


def test_cells_consistent(table: dict[str, Language]) -> None:
    for lang in table.values():
        assert lang.resource in {"high", "medium", "low"}, lang
        assert 0 <= lang.joshi_class <= 5, lang
        expected = "high" if lang.joshi_class >= 4 else "medium" if lang.joshi_class == 3 else "low"
        assert lang.resource == expected, lang
        assert lang.script == lang.flores.split("_")[1], lang
        assert lang.sonar_text == lang.flores, lang
        assert lang.name and lang.family, lang
        for code in (lang.seamless, lang.sonar_speech):
            assert code is None or CODE3_RE.match(code), lang
        assert lang.espeak is None or re.match(r"^[a-z0-9-]+$", lang.espeak), lang


def test_sonar_speech_codes_are_real_encoders(table: dict[str, Language]) -> None:
    used = {lang.sonar_speech for lang in table.values() if lang.sonar_speech}
    assert used == SONAR_SPEECH


def test_english() -> None:
    eng = get("eng_Latn")
    assert eng.fleurs == "en_us"
    assert eng.seamless == "eng"
    assert eng.sonar_speech == "eng"
    assert eng.espeak == "en-us"
    assert eng.resource == "high" and eng.joshi_class == 5


def test_mandarin() -> None:
    zho = get("zho_Hans")
    assert zho.fleurs == "cmn_hans_cn"
    assert zho.seamless == "cmn"
    assert zho.sonar_speech == "cmn"
    assert zho.espeak == "cmn-latn-pinyin"
    assert zho.script == "Hans"


def test_missing_support_is_none() -> None:
    assert get("amh_Ethi").sonar_speech is None
    assert get("amh_Ethi").seamless == "amh"
    assert get("yor_Latn").espeak is None
    assert get("hau_Latn").seamless is None


def test_language_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get("eng_Latn").name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("query", "expected"),
    [("eng_latn", "eng_Latn"), ("en_us", "eng_Latn"), ("swahili", "swh_Latn"), ("pes", "pes_Arab")],
)
def test_unknown_code_suggests_close_match(query: str, expected: str) -> None:
    with pytest.raises(UnknownLanguageError) as excinfo:
        get(query)
    message = str(excinfo.value)
    assert repr(query) in message
    assert f"did you mean {expected}" in message
    assert isinstance(excinfo.value, ValueError)


def test_unknown_code_without_match() -> None:
    with pytest.raises(UnknownLanguageError, match="'qqq_Zzzz'"):
        get("qqq_Zzzz")


def test_by_fleurs_round_trip(table: dict[str, Language]) -> None:
    for code, lang in table.items():
        assert by_fleurs(lang.fleurs) is lang
        assert get(code) is lang
    assert by_fleurs("yue_hant_hk").flores == "yue_Hant"
    with pytest.raises(UnknownLanguageError, match="did you mean eng_Latn"):
        by_fleurs("EN_US")


def test_load_table_is_cached() -> None:
    assert load_table() is load_table()


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_voices_exist(table: dict[str, Language]) -> None:
    out = subprocess.run(
        ["espeak-ng", "--voices"], capture_output=True, text=True, check=True
    ).stdout
    voices = {line.split()[1] for line in out.splitlines()[1:] if line.strip()}
    missing = {lang.flores: lang.espeak for lang in table.values() if lang.espeak not in voices}
    assert all(v is None for v in missing.values()), missing
