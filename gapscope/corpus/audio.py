"""Audio reading: any sample rate to 16 kHz, stereo mixed down, with clear errors."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

TARGET_RATE = 16_000


class AudioError(ValueError):
    """An audio file cannot be used; the message names the file and the reason."""


def resample(samples: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Polyphase resampling from ``rate`` to ``target`` Hz (duration preserved)."""
    if rate == target:
        return samples
    g = gcd(int(rate), int(target))
    return resample_poly(samples, target // g, int(rate) // g).astype(np.float32)


def read_audio(path: str | Path, target: int = TARGET_RATE) -> tuple[np.ndarray, int]:
    """Read a sound file as mono float32 at ``target`` Hz; return samples and the file's rate."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: audio file not found")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(f"{path}: unreadable audio ({err})") from err
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(mono, rate, target), int(rate)


def check_audio(samples: np.ndarray, path: str | Path, *, min_seconds: float = 0.1) -> None:
    """Reject empty, too short, silent or non-finite audio with the file named."""
    if samples.size == 0:
        raise AudioError(f"{path}: empty audio")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: audio contains NaN or inf")
    if samples.size < min_seconds * TARGET_RATE:
        raise AudioError(f"{path}: shorter than {min_seconds} s ({samples.size} samples)")
    if float(np.abs(samples).max()) < 1e-4:
        raise AudioError(f"{path}: silent audio (peak amplitude below 1e-4)")
