"""Kaldi-compatible log-mel filterbank in plain torch (torchaudio does not work with our torch).

``compute-fbank-feats`` with ``snip_edges`` and no dither: 25 ms frames every 10 ms, DC
removal, pre-emphasis 0.97 (the first sample scaled by 0.03), Povey window (Hann ** 0.85),
zero-padded FFT, power spectrum, triangular mel filters, log. All frames of an utterance are
computed at once; BEATs (SALMONN) and SeamlessM4T's speech encoder read it. The
SeamlessM4T path reuses the checkpoint's own filters and window, so its features equal the
transformers feature extractor's, which loops over frames in Python (2-3x slower here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SAMPLE_RATE = 16_000


def _mel(freq: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


def _mel_banks(n_mels: int, n_fft: int, sample_rate: int, low: float, high: float) -> torch.Tensor:
    """Triangular Kaldi mel filters, (n_mels, n_fft // 2 + 1); the Nyquist column is zero."""
    if high <= 0.0:
        high += sample_rate / 2
    lo, hi = _mel(low), _mel(high)
    delta = (hi - lo) / (n_mels + 1)
    index = torch.arange(n_mels, dtype=torch.float32).unsqueeze(1)
    left, centre, right = lo + index * delta, lo + (index + 1) * delta, lo + (index + 2) * delta
    mel = _mel(sample_rate / n_fft * torch.arange(n_fft // 2, dtype=torch.float32)).unsqueeze(0)
    up = (mel - left) / (centre - left)
    down = (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1))


def n_fbank_frames(n_samples: int, frame_length: int = 400, frame_shift: int = 160) -> int:
    """Frames Kaldi makes from ``n_samples`` (``snip_edges``: only whole windows)."""
    return 0 if n_samples < frame_length else 1 + (n_samples - frame_length) // frame_shift


def kaldi_fbank(
    waveform: torch.Tensor,
    *,
    n_mels: int = 128,
    sample_rate: int = SAMPLE_RATE,
    frame_ms: float = 25.0,
    shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    banks: torch.Tensor | None = None,
    window: torch.Tensor | None = None,
    floor: float | None = None,
) -> torch.Tensor:
    """Kaldi ``compute-fbank-feats`` defaults without dither: (frames, n_mels) log energies.

    ``waveform`` is 1-D, already scaled as Kaldi expects (int16 range), in the dtype the
    features should be computed in. ``banks`` ``(n_mels, n_fft // 2 + 1)``, ``window`` and
    the log ``floor`` replace Kaldi's filters, Povey window and the dtype's epsilon.
    """
    if waveform.dim() != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {tuple(waveform.shape)}")
    size = int(sample_rate * frame_ms / 1000)
    shift = int(sample_rate * shift_ms / 1000)
    n_fft = 1 << (size - 1).bit_length()
    if banks is not None:
        n_mels = banks.shape[0]
    n_frames = n_fbank_frames(waveform.numel(), size, shift)
    if n_frames == 0:
        return waveform.new_zeros((0, n_mels))
    frames = waveform.unfold(0, size, shift)[:n_frames]
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - preemphasis * previous
    if window is None:
        window = torch.hann_window(size, periodic=False, dtype=frames.dtype).pow(0.85)
    frames = frames * window.to(frames)
    spectrum = torch.fft.rfft(F.pad(frames, (0, n_fft - size)))
    power = spectrum.real.square() + spectrum.imag.square()  # |z|², no square root
    if banks is None:
        banks = _mel_banks(n_mels, n_fft, sample_rate, low_freq, high_freq)
    energies = power @ banks.to(power).T
    if floor is None:
        floor = torch.finfo(energies.dtype).eps
    return torch.clamp(energies, min=floor).log()
