"""Speech synthesis with espeak-ng, including the romanisation some scripts need.

espeak-ng reads Hanzi digits and kanji as English words, so Mandarin is converted to tone-
numbered pinyin (pypinyin, voice ``cmn-latn-pinyin``) and Japanese kanji to hiragana
(pykakasi) before synthesis. Output is resampled to 16 kHz mono float32.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from gapscope import languages
from gapscope.corpus.audio import TARGET_RATE, read_audio


class NoVoiceError(ValueError):
    """espeak-ng has no voice for a language."""


def espeak_voice(language: str) -> str:
    """The espeak-ng voice for a FLORES code, or a clear error when there is none."""
    lang = languages.get(language)
    if lang.espeak is None:
        raise NoVoiceError(
            f"language {language} ({lang.name}): espeak-ng has no voice for it, so the demo "
            "corpus cannot synthesise its speech; remove it from `languages` or use a FLEURS "
            "source (corpus.source: fleurs_hf or fleurs_local)"
        )
    return lang.espeak


def romanise(text: str, language: str) -> str:
    """Text as espeak-ng can read it: pinyin for Mandarin, kana for Japanese, else unchanged."""
    if language.startswith("zho_") and languages.get(language).espeak == "cmn-latn-pinyin":
        from pypinyin import Style, lazy_pinyin

        return " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))
    if language == "jpn_Jpan":
        return "".join(item["hira"] for item in _kakasi().convert(text))
    return text


@functools.cache
def _kakasi():
    import pykakasi

    return pykakasi.kakasi()


def synthesize(text: str, language: str, *, speed: int = 160, pitch: int = 50) -> np.ndarray:
    """Speak ``text`` with espeak-ng; return 16 kHz mono float32 samples."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    voice = espeak_voice(language)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        cmd = [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), "--stdin"]
        proc = subprocess.run(
            cmd, input=romanise(text, language).encode(), capture_output=True, check=False
        )
        if proc.returncode != 0 or not wav.exists():
            raise RuntimeError(
                f"espeak-ng failed for {language} (voice {voice}): {proc.stderr.decode().strip()}"
            )
        samples, _ = read_audio(wav)
    if samples.size == 0:
        raise RuntimeError(f"espeak-ng produced no audio for {language}: {text!r}")
    return samples


__all__ = ["NoVoiceError", "TARGET_RATE", "espeak_voice", "romanise", "synthesize"]
