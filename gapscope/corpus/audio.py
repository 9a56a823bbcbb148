"""Audio reading: any sample rate to 16 kHz, stereo mixed down, with clear errors.

:func:`inspect_audio` is the manifest stage's hygiene check: it reads a file the way
extraction will and raises :class:`AudioError` (file and reason named) for unreadable,
empty, too short, silent, non-finite or clipped audio, so that no store fails halfway.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf

TARGET_RATE = 16_000
FULL_SCALE = 0.999
"""A sample at or above this magnitude (of 1.0) counts as clipped."""


class AudioError(ValueError):
    """An audio file cannot be used; the message names the file and the reason."""


@dataclass(frozen=True)
class AudioInfo:
    """What the hygiene check learnt about one file."""

    rate: int
    channels: int
    num_samples: int  # at 16 kHz, after mixing down
    clipped_fraction: float


def resample(samples: np.ndarray, rate: int, target: int = TARGET_RATE) -> np.ndarray:
    """Polyphase resampling from ``rate`` to ``target`` Hz (duration preserved)."""
    if rate == target:
        return samples
    from scipy.signal import resample_poly  # imported here: config checks import this module

    g = gcd(int(rate), int(target))
    return resample_poly(samples, target // g, int(rate) // g).astype(np.float32)


def _read(source, name: str | Path) -> tuple[np.ndarray, int]:
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(f"{name}: unreadable audio ({err})") from err
    return data, int(rate)


def _mono(data: np.ndarray) -> np.ndarray:
    return data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]


def read_audio(path: str | Path, target: int = TARGET_RATE) -> tuple[np.ndarray, int]:
    """Read a sound file as mono float32 at ``target`` Hz; return samples and the file's rate."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: audio file not found")
    data, rate = _read(path, path)
    return resample(_mono(data), rate, target), rate


def decode_bytes(data: bytes, name: str, target: int = TARGET_RATE) -> tuple[np.ndarray, int]:
    """Decode an encoded sound file held in memory (WAV, FLAC, OGG) to mono ``target`` Hz."""
    raw, rate = _read(io.BytesIO(data), name)
    return resample(_mono(raw), rate, target), rate


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


def clipped_fraction(data: np.ndarray) -> float:
    """Share of samples (all channels, before resampling) at full scale."""
    if data.size == 0:
        return 0.0
    return float(np.count_nonzero(np.abs(data) >= FULL_SCALE) / data.size)


def inspect_audio(
    path: str | Path,
    *,
    max_clipped_fraction: float = 0.01,
    min_seconds: float = 0.1,
    max_seconds: float | None = None,
) -> AudioInfo:
    """Read ``path`` as extraction will and check it; raise :class:`AudioError` if unusable.

    Clipping is judged on the file's own samples (before resampling smooths plateaus): a
    file whose share of full-scale samples exceeds ``max_clipped_fraction`` is rejected.
    ``max_seconds`` rejects longer files (e.g. 30 s for models with Whisper's 30 s window).
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: audio file not found")
    data, rate = _read(path, path)
    clipped = clipped_fraction(data)
    samples = resample(_mono(data), rate)
    check_audio(samples, path, min_seconds=min_seconds)
    if clipped > max_clipped_fraction:
        raise AudioError(
            f"{path}: clipped audio ({clipped:.1%} of samples at full scale, more than "
            f"corpus.max_clipped_fraction={max_clipped_fraction})"
        )
    if max_seconds is not None and samples.size > max_seconds * TARGET_RATE:
        raise AudioError(
            f"{path}: longer than corpus.max_seconds={max_seconds} "
            f"({samples.size / TARGET_RATE:.1f} s)"
        )
    return AudioInfo(rate, int(data.shape[1]), int(samples.size), clipped)
