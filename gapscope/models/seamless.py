"""SeamlessM4T v2 and v1 (transformers): text encoder and speech encoder, every layer.

Taps
----
text:   ``layer00`` (scaled token embeddings + positions, the input of block 1) ...
        ``layerNN`` (raw output of block NN), ``encoder_out`` (after the final LayerNorm:
        what the shared decoder reads).
speech: ``layer00`` (feature-projection output) ... ``layerNN`` (raw output of conformer
        block NN), ``pre_adaptor`` (the length adaptor's input: after the encoder's final
        LayerNorm and the half-step intermediate FFN) and ``post_adaptor`` (after the length
        adaptor and ``inner_layer_norm``: what the decoder reads; about 8x shorter).

Every tap is read by a forward hook, so transformers' ``tie_last_hidden_states`` (which
replaces the last speech hidden state by the post-adaptor output) never applies here.

Pooling: masked mean over real positions. Text drops the language tag and ``</s>``
(special tokens carry no sentence content and would add the same vector to every sentence
of a language); speech pools every real frame, and ``post_adaptor`` uses the downsampled
mask of the adaptor.

Speech features: :func:`speech_features` computes what the checkpoint's
``SeamlessM4TFeatureExtractor`` computes (its own mel filters and window; tests: a float64
frame loop to 1e-8, the extractor itself to 1e-3 as it keeps the spectrum in complex64) with
all frames of an utterance at once. transformers' extractor loops over frames in Python:
about 8 ms per 3-s utterance here, as much as the tiny model's forward pass, and a ceiling
near 100-150 utterances/s per CPU core in front of a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from gapscope import languages
from gapscope.models import ModelSpec
from gapscope.models.base import (
    Pooled,
    TapCapture,
    check_modality,
    check_waves,
    default_device,
    lengths_to_mask,
    load_processor,
    pool,
    resolve_dtype,
)
from gapscope.models.fbank import kaldi_fbank

# transformers' SeamlessM4TFeatureExtractor: log floor (float32 eps), per-bin variance floor
MEL_FLOOR = 1.192092955078125e-07
VARIANCE_FLOOR = 1e-7
PAD_TO_MULTIPLE_OF = 2

FAMILIES = {
    "seamless_m4t_v2": ("SeamlessM4Tv2ForTextToText", "SeamlessM4Tv2ForSpeechToText"),
    "seamless_m4t": ("SeamlessM4TForTextToText", "SeamlessM4TForSpeechToText"),
}


def _model_class(family: str, modality: str) -> type:
    import transformers

    text_cls, speech_cls = FAMILIES[family]
    return getattr(transformers, text_cls if modality == "text" else speech_cls)


def load_model(spec: ModelSpec, modality: str, device: torch.device) -> torch.nn.Module:
    """Load the text or speech half of a SeamlessM4T checkpoint (hub id or local folder).

    ``init: random`` builds the same architecture from the checkpoint's config with seeded
    random weights (the architecture-matched control); ``pretrained`` loads the weights.
    Remote code runs only when the model's config sets ``trust_remote_code: true``.
    """
    from transformers import AutoConfig
    from transformers.utils import logging as transformers_logging

    cls = _model_class(spec.adapter, modality)
    dtype = resolve_dtype(spec.dtype, device)
    common = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    config = AutoConfig.from_pretrained(spec.checkpoint, **common)
    if config.model_type != spec.adapter:
        raise ValueError(
            f"models.{spec.name}: checkpoint {spec.checkpoint} is a {config.model_type!r} model "
            f"but the adapter is {spec.adapter!r}"
        )
    # Encoders only: the text decoder's layers (600 million weights in the large models)
    # are neither built nor read, which takes 40-80% off the loading time. A random-init
    # control keeps its seeded weights that way only for speech (the decoder is built after
    # the speech encoder; full size: 30 -> 19 s on 2 threads): the text control's tied
    # embeddings are initialised after the decoder, so it still builds the decoder.
    if spec.init == "pretrained" or modality == "speech":
        config.decoder_layers = 0
    if spec.init == "random":
        torch.manual_seed(spec.seed)
        model = cls._from_config(config, dtype=dtype)
    elif spec.init == "pretrained":
        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()  # the load report lists every unused key
        try:
            model, info = cls.from_pretrained(
                spec.checkpoint, config=config, dtype=dtype, output_loading_info=True, **common
            )
        finally:
            transformers_logging.set_verbosity(verbosity)
        encoder = f"{modality}_encoder."
        missing = [k for k in info["missing_keys"] if k.startswith(encoder)]
        if missing:
            raise ValueError(
                f"models.{spec.name}: checkpoint {spec.checkpoint} lacks {len(missing)} "
                f"{modality}-encoder weights (e.g. {missing[:3]}); wrong adapter or checkpoint?"
            )
    else:
        raise ValueError(f"models.{spec.name}.init: unknown value {spec.init!r}")
    unused = ("text_decoder", "lm_head", *(("shared",) if modality == "speech" else ()))
    for name in unused:  # encoders only; the text encoder reads ``shared`` embeddings
        if hasattr(model, name):
            delattr(model, name)
    return model.eval().to(device)


def speech_features(
    waves: Sequence[np.ndarray], extractor: Any
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``extractor(waves, padding=True, return_attention_mask=True)`` for a
    ``SeamlessM4TFeatureExtractor``, vectorised over frames: ``(input_features,
    attention_mask, alone)``.

    Per utterance: waveform x 2**15 in float64, Kaldi fbank with the extractor's mel filters
    and window, log floor 2**-23, each mel bin normalised over frames (ddof 1). Then padded
    with ``padding_value`` to the longest (a multiple of 2), ``stride`` frames stacked per
    position, and the mask taken at frames ``i % stride == 1``, all as transformers does.
    ``alone``: how many stacked frames each utterance has when it is extracted alone, one
    more than its mask counts when its fbank frames are odd (the last stacked frame holds
    the last real frame and padding).
    """
    banks = torch.from_numpy(np.asarray(extractor.mel_filters, dtype=np.float64).T)
    window = torch.from_numpy(np.asarray(extractor.window, dtype=np.float64))
    feats = []
    for wave in waves:
        scaled = np.squeeze(np.asarray(wave, dtype=np.float32)) * np.float32(2**15)
        fbank = kaldi_fbank(
            torch.from_numpy(scaled).to(torch.float64), banks=banks, window=window, floor=MEL_FLOOR
        )
        mean, var = fbank.mean(dim=0), fbank.var(dim=0, correction=1)
        feats.append((fbank - mean) / torch.sqrt(var + VARIANCE_FLOOR))
    stride, bins = int(extractor.stride), banks.shape[0]
    longest = max(len(f) for f in feats)
    longest += -longest % PAD_TO_MULTIPLE_OF
    padded = torch.full(
        (len(feats), longest, bins), float(extractor.padding_value), dtype=torch.float64
    )
    mask = torch.zeros((len(feats), longest), dtype=torch.long)
    for i, fbank in enumerate(feats):
        padded[i, : len(fbank)] = fbank
        mask[i, : len(fbank)] = 1
    kept = longest - longest % stride
    features = padded[:, :kept].reshape(len(feats), kept // stride, bins * stride)
    alone = [len(f) + -len(f) % PAD_TO_MULTIPLE_OF for f in feats]
    alone = torch.tensor([(n - n % stride) // stride for n in alone], dtype=torch.long)
    return features, mask[:, :kept][:, torch.arange(kept) % stride == 1], alone


class SeamlessAdapter:
    """SeamlessM4T (v1 or v2) encoders behind the gapscope adapter protocol."""

    sampling_rate = 16_000

    def __init__(self, spec: ModelSpec, modality: str, device: torch.device | None = None):
        self.spec = spec
        self.family = spec.adapter
        self.modality = modality
        self.device = device or default_device()
        part = "tokenizer" if modality == "text" else "feature_extractor"
        self.processor = load_processor(spec, (part,))
        self.model = load_model(spec, modality, self.device)
        if modality == "speech":
            self._check_feature_width()
        self.capture = TapCapture()
        if modality == "text":
            self.encoder = self.model.text_encoder
            blocks = self.encoder.layers
        else:
            self.encoder = self.model.speech_encoder
            blocks = self.encoder.encoder.layers
        self.n_layers = len(blocks)
        self.capture.input_of(blocks[0], "layer00")
        for i, block in enumerate(blocks, start=1):
            self.capture.output_of(block, f"layer{i:02d}")
        self.has_adaptor = (
            modality == "speech" and getattr(self.encoder, "adapter", None) is not None
        )
        self._alone_lengths: list[torch.Tensor] = []
        if self.has_adaptor:
            self.capture.input_of(self.encoder.adapter, "pre_adaptor")
            for i, layer in enumerate(self.encoder.adapter.layers):
                for conv in (layer.residual_conv, layer.self_attn_conv):
                    conv.register_forward_pre_hook(self._zero_padding_hook(i))

    def _check_feature_width(self) -> None:
        """The extractor's mel bins x stride must be the width the speech encoder reads."""
        extractor = self.processor.feature_extractor
        bins = np.asarray(extractor.mel_filters).shape[1]
        width = bins * int(extractor.stride)
        expected = self.model.config.feature_projection_input_dim
        if width != expected:
            raise ValueError(
                f"models.{self.spec.name}: the feature extractor of {self.spec.checkpoint} "
                f"gives {bins} mel bins x stride {extractor.stride} = {width} features per "
                f"frame, but the speech encoder reads {expected}"
            )

    def _zero_padding_hook(self, index: int):
        """Before an adaptor convolution, zero every frame the utterance would not have alone.

        transformers runs the stride-8 convolutions over every position, masked or not. Run
        alone, an utterance has its real frames, plus, when its fbank frames are odd, one
        masked stacked frame (its last real frame and padding), which the convolutions read;
        past those they pad with zeros. In a padded batch the later positions hold the
        LayerNorm output of padding instead. Zeroing exactly those makes every tap of an
        utterance equal transformers' output for it run alone (the reference we follow:
        docs/models.md), whatever its batch companions.
        """

        def hook(_mod, args):
            if not self._alone_lengths:
                return None
            mask = lengths_to_mask(self._alone_lengths[index], args[0].shape[-1])
            return (args[0] * mask.to(args[0].dtype)[:, None, :],)

        return hook

    def taps(self, modality: str | None = None) -> list[str]:
        """Ordered taps of the loaded model for its modality."""
        layers = [f"layer{i:02d}" for i in range(self.n_layers + 1)]
        if (modality or self.modality) == "text":
            return [*layers, "encoder_out"]
        return [*layers, "pre_adaptor", "post_adaptor"] if self.has_adaptor else layers

    def _lang_code(self, language: str) -> str:
        """The SeamlessM4T code of ``language``, whose tag the tokenizer must know.

        Without this check a tokenizer lacking the tag (a trimmed or converted checkpoint)
        puts ``<unk>`` where the tag belongs and every vector is computed anyway.
        """
        code = languages.get(language).seamless
        if code is None:
            raise ValueError(f"{self.spec.name}: SeamlessM4T has no code for language {language}")
        tokenizer = self.processor.tokenizer
        tag = f"__{code}__"
        tid = tokenizer.convert_tokens_to_ids(tag)
        if tid is None or tid == tokenizer.unk_token_id:
            raise ValueError(
                f"models.{self.spec.name}: the tokenizer of {self.spec.checkpoint} has no "
                f"language tag {tag} for {language}"
            )
        return code

    def text_lengths(self, sentences: Sequence[str], language: str) -> list[int]:
        """Token counts including the language tag and ``</s>``."""
        enc = self.processor.tokenizer(list(sentences), src_lang=self._lang_code(language))
        return [len(ids) for ids in enc["input_ids"]]

    @torch.inference_mode()
    def encode(self, inputs: Sequence, language: str, modality: str | None = None) -> Pooled:
        """Pool every tap for one batch of sentences (text) or waveforms (speech)."""
        modality = check_modality(self.modality, modality)
        self.capture.tensors.clear()
        if modality == "text":
            return self._encode_text(list(inputs), language)
        return self._encode_speech(list(inputs))

    def _encode_text(self, sentences: list[str], language: str) -> Pooled:
        enc = self.processor.tokenizer(
            sentences,
            src_lang=self._lang_code(language),
            return_tensors="pt",
            padding=True,
            return_special_tokens_mask=True,
        )
        attention = enc["attention_mask"].to(self.device)
        out = self.encoder(input_ids=enc["input_ids"].to(self.device), attention_mask=attention)
        content = attention.bool() & ~enc["special_tokens_mask"].to(self.device).bool()
        tensors = {**self.capture.tensors, "encoder_out": out.last_hidden_state}
        return pool(tensors, {tap: content for tap in tensors})

    def _encode_speech(self, waves: list[np.ndarray]) -> Pooled:
        waves = check_waves(waves, self.spec.name)
        features, frames, alone = speech_features(waves, self.processor.feature_extractor)
        frames = frames.to(self.device)
        dtype = next(self.model.parameters()).dtype
        self._alone_lengths = self._lengths_alone(alone.to(self.device))
        try:
            out = self.encoder(
                input_features=features.to(self.device, dtype), attention_mask=frames
            )
        finally:
            self._alone_lengths = []
        masks = {tap: frames.bool() for tap in self.capture.tensors}
        tensors = dict(self.capture.tensors)
        if self.has_adaptor:
            short = out.last_hidden_state
            tensors["post_adaptor"] = short
            masks["post_adaptor"] = lengths_to_mask(self._adaptor_lengths(frames), short.shape[1])
        return pool(tensors, masks)

    def _lengths_alone(self, alone: torch.Tensor) -> list[torch.Tensor]:
        """Positions an utterance has alone at the input of each adaptor layer: its stacked
        frames, then each convolution's output length (the convolution pads the rest)."""
        if not self.has_adaptor:
            return []
        lengths = [alone]
        for layer in self.encoder.adapter.layers[:-1]:
            conv = layer.residual_conv
            kernel, stride, padding = conv.kernel_size[0], conv.stride[0], conv.padding[0]
            lengths.append((lengths[-1] + 2 * padding - kernel) // stride + 1)
        return lengths

    def _adaptor_lengths(self, frames: torch.Tensor) -> torch.Tensor:
        """Real lengths after the adaptor, by its own rule (transformers'
        ``_compute_sub_sample_lengths_from_attention_mask``): what ``post_adaptor`` pools.

        It can be one shorter than the convolution's output when the feature extractor
        padded the frames to an even count; that last position covers mostly padding and is
        left out, as transformers' adaptor attention leaves it out.
        """
        lengths = frames.sum(dim=1).to(torch.long)
        for layer in self.encoder.adapter.layers:
            mask = lengths_to_mask(lengths, frames.shape[1]).long()
            lengths = layer._compute_sub_sample_lengths_from_attention_mask(mask).to(torch.long)
        return lengths
