"""Regenerate salmonn_beats_reference.npz (reference numbers for tests/test_salmonn.py).

Needs two packages that gapscope does not depend on, installed anywhere importable, e.g.
``pip install --no-deps --target /tmp/ref kaldi-native-fbank openbeats`` and then
``PYTHONPATH=/tmp/ref python tests/data/make_salmonn_beats_reference.py``.

- ``kaldi_fbank_80``: kaldi-native-fbank (C++ Kaldi port) on the reference waveform, 80 mel
  bins (Kaldi refuses BEATs' 128 bins at a 512-point FFT because some filters are empty;
  torchaudio does not check, so BEATs uses 128).
- ``beats_out``: openbeats' ``BeatsEncoder`` (ESPnet's port of Microsoft's BEATs) with the
  deterministic reference weights. openbeats imports torchaudio only for the filterbank, so
  a stub module hands it gapscope's filterbank; the number compares the encoders.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import kaldi_native_fbank as knf  # noqa: E402

# transformers must be imported before the torchaudio stub exists (it probes torchaudio)
import transformers.models.bart.modeling_bart  # noqa: E402, F401
import transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer  # noqa: E402, F401

from gapscope.models.fbank import kaldi_fbank  # noqa: E402
from tests.test_salmonn import (  # noqa: E402
    REFERENCE,
    REFERENCE_BEATS,
    reference_state_dict,
    reference_waveform,
)


def kaldi_reference(wave: torch.Tensor) -> np.ndarray:
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = 16000
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = 80
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = 0.0
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(16000, (wave * 2**15).tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def openbeats_reference(wave: torch.Tensor) -> np.ndarray:
    names = ("torchaudio", "torchaudio.compliance", "torchaudio.compliance.kaldi")
    stub, compliance, kaldi = (types.ModuleType(n) for n in names)
    kaldi.fbank = lambda waveform, **_: kaldi_fbank(waveform[0])
    compliance.kaldi, stub.compliance = kaldi, compliance
    sys.modules.update(dict(zip(names, (stub, compliance, kaldi), strict=True)))
    from openbeats.beats_encoder import BeatsEncoder

    config = dict(REFERENCE_BEATS, dropout=0.0, attention_dropout=0.0)
    encoder = BeatsEncoder(input_size=0, beats_config=config).eval()
    own = ("patch_embedding_pad", "raw2fbank_pad")  # ESPnet's frozen mask helpers
    shapes = [(k, tuple(v.shape)) for k, v in encoder.state_dict().items() if not k.startswith(own)]
    result = encoder.load_state_dict(reference_state_dict(shapes), strict=False)
    assert not result.unexpected_keys and all(k.startswith(own) for k in result.missing_keys)
    with torch.inference_mode():
        mask = torch.zeros(1, wave.numel(), dtype=torch.bool)
        return encoder.extract_features(wave[None, :, None], padding_mask=mask)[0][0].numpy()


def main() -> None:
    wave = reference_waveform()
    np.savez_compressed(
        REFERENCE,
        kaldi_fbank_80=kaldi_reference(wave).astype(np.float32),
        beats_out=openbeats_reference(wave).astype(np.float32),
    )
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
