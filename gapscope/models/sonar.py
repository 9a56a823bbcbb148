"""SONAR (fairseq2 + sonar-space): the text encoder and the per-language speech encoders.

SONAR needs fairseq2, which pins its own torch, so this module runs only in the SONAR
environment (``envs/install_sonar.sh``); every fairseq2/sonar import is inside a function,
and the main environment never imports this module (``gapscope.models`` names it lazily).

Checkpoints are fairseq2 *asset cards*. ``checkpoint`` is either

- ``sonar``: fairseq2's asset store, i.e. the cards shipped with sonar-space
  (``text_sonar_basic_encoder``, ``sonar_speech_encoder_<code>``) plus whatever the user
  overrides in ``~/.config/fairseq2/assets`` / ``$FAIRSEQ2_USER_ASSET_DIR``; weights are
  downloaded into ``$FAIRSEQ2_CACHE_DIR`` (default ``~/.cache/fairseq2/assets``) on first
  use, so an offline cluster pre-fills that cache, or
- a local folder of asset cards (``*.yaml``): every card the model uses must be there (no
  silent download of a missing one), but a card may name a ``base`` card that only the
  store has, and gives ``checkpoint``/``tokenizer`` as paths relative to the card file.
  The tiny test models are such a folder (``tests/builders/sonar_tiny.py``), so tests load
  through this same code path.

``options`` (all optional): ``text_encoder`` (card, default ``text_sonar_basic_encoder``),
``tokenizer`` (card, default: the text encoder's card), ``speech_encoder`` (card name
template, default ``sonar_speech_encoder_{lang}``, where ``{lang}`` is the language table's
``sonar_speech`` code) and ``speech_base`` (the card whose architecture declares the speech
taps before a language's encoder is loaded, default ``sonar_speech_encoder_base``).

Weights are loaded by fairseq2 with ``torch.load(weights_only=True)``; a card asking for
unrestricted unpickling (``restrict: false``) is refused unless ``trust_remote_code: true``.
``init: random`` builds the card's architecture (its config, with the card's overrides) with
weights drawn from ``torch.manual_seed(seed)``: the architecture-matched control.

Taps
----
text:   ``layer00`` (scaled token embeddings + sinusoidal positions: the input of block 1)
        ... ``layerNN`` (raw output of block NN, before the final LayerNorm), ``pooled``
        (the SONAR sentence embedding: the mean over every token of the final-LayerNorm
        output, exactly as SONAR computes it).
speech: ``layer00`` (w2v-BERT frontend output: stacked fbank -> LayerNorm -> projection)
        ... ``layerNN`` (raw output of Conformer block NN), ``pre_pooler`` (the attention
        pooler's input: the encoder output after SONAR's final LayerNorm) and ``pooled``
        (the SONAR speech embedding: attention-pooling decoder + projection).

Pooling: layer taps and ``pre_pooler`` are masked means over real positions; text drops the
language tag and ``</s>`` as the SeamlessM4T adapter does (special tokens carry no sentence
content and add the same vector to every sentence of a language). ``pooled`` is SONAR's own
embedding, so its text mean includes the language tag and ``</s>`` (its recorded length is
the full token count) and its speech value is the pooler output (length: frames attended).
Inputs follow SONAR's inference pipelines: text via the card's NLLB tokenizer with the
FLORES code (``__eng_Latn__ ... </s>``, truncated to the encoder's maximum length); speech
as 80-bin fbank of the 16 kHz waveform (scaled to 16-bit range, standardised per utterance),
zero-padded to an even number of frames.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

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
    pool,
    resolve_dtype,
)

log = logging.getLogger(__name__)

STORE = "sonar"
DEFAULT_OPTIONS = {
    "text_encoder": "text_sonar_basic_encoder",
    "tokenizer": None,
    "speech_encoder": "sonar_speech_encoder_{lang}",
    "speech_base": "sonar_speech_encoder_base",
}
TEXT_FAMILY = "transformer_encoder"
SPEECH_FAMILY = "sonar_speech"
# the speech frontend stacks 2 fbank frames (25 ms windows, 10 ms shift): fewer leave nothing
MIN_FBANK_FRAMES = 2
MIN_SAMPLES = 400 + 160 * (MIN_FBANK_FRAMES - 1)  # a 400-sample window every 160 samples


def require_fairseq2() -> None:
    """Fail clearly outside the SONAR environment (the main one cannot host fairseq2)."""
    try:
        import fairseq2  # noqa: F401
        import sonar  # noqa: F401
    except ImportError as err:
        raise RuntimeError(
            "SONAR models need the SONAR environment (fairseq2 + sonar-space, torch 2.8.0): "
            "build it with `bash envs/install_sonar.sh` and run with .venv-sonar/bin/python "
            f"(the workflow does this itself in rule extract_activations_sonar); {err}"
        ) from err


def options(spec: ModelSpec) -> dict:
    """The adapter options of ``spec`` with defaults; unknown keys are an error."""
    unknown = sorted(set(spec.options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(
            f"models.{spec.name}.options: unknown key(s) {unknown} for adapter sonar "
            f"(known: {sorted(DEFAULT_OPTIONS)})"
        )
    merged = {**DEFAULT_OPTIONS, **spec.options}
    merged["tokenizer"] = merged["tokenizer"] or merged["text_encoder"]
    if "{lang}" not in merged["speech_encoder"]:
        raise ValueError(f"models.{spec.name}.options.speech_encoder: must contain '{{lang}}'")
    return merged


class Cards:
    """Asset cards from a local folder (``checkpoint`` is a folder) or fairseq2's store.

    A local card's ``base`` is looked up in the folder first, then in the store.
    """

    def __init__(self, spec: ModelSpec):
        from fairseq2.assets import AssetStore, FileAssetMetadataLoader
        from fairseq2.runtime.dependency import get_dependency_resolver

        self.spec = spec
        resolver = get_dependency_resolver()
        self.store = resolver.resolve(AssetStore)
        self.local = None
        if spec.checkpoint != STORE:
            folder = Path(spec.checkpoint)
            if not folder.is_dir():
                raise ValueError(
                    f"models.{spec.name}.checkpoint: {spec.checkpoint!r} is neither {STORE!r} "
                    "(fairseq2's asset store) nor a folder of fairseq2 asset cards"
                )
            self.local = resolver.resolve(FileAssetMetadataLoader).load(folder.resolve())

    def get(self, name: str, family: str | None = None):
        """The card ``name`` (from the local folder if any), checked to be of ``family``."""
        from fairseq2.assets import AssetNotFoundError

        if self.local is not None and self.local.maybe_get_metadata(f"{name}@") is None:
            raise ValueError(
                f"models.{self.spec.name}: no asset card {name!r} in {self.spec.checkpoint}"
            )
        try:
            card = self._retrieve(name)
        except AssetNotFoundError:
            raise ValueError(
                f"models.{self.spec.name}: no asset card {name!r} in fairseq2's asset store "
                "(sonar-space cards + ~/.config/fairseq2/assets)"
            ) from None
        found = card.field("model_family").value if card.has_field("model_family") else None
        if family is not None and found != family:
            raise ValueError(
                f"models.{self.spec.name}: asset card {name!r} is a {found!r} model, "
                f"expected {family!r}"
            )
        restrict = card.maybe_get_field("restrict")
        if restrict is not None and restrict.value is False and not self.spec.trust_remote_code:
            raise ValueError(
                f"models.{self.spec.name}: asset card {name!r} sets restrict: false (unpickles "
                "arbitrary objects); set trust_remote_code: true only if you trust it"
            )
        return card

    def _retrieve(self, name: str, seen: tuple[str, ...] = ()):
        """The card ``name``; a local card whose ``base`` has its own name refines the store's
        card of that name (e.g. ``text_sonar_basic_encoder`` with a local checkpoint)."""
        from fairseq2.assets import AssetCard

        metadata = None if self.local is None else self.local.maybe_get_metadata(f"{name}@")
        if metadata is None:
            return self.store.retrieve_card(name)
        base = metadata.get("base")
        if not isinstance(base, str):
            parent = None
        elif base == name:
            parent = self.store.retrieve_card(base)
        elif base in seen:
            loop = " -> ".join([*seen, name, base])
            raise ValueError(
                f"models.{self.spec.name}: the asset cards in {self.spec.checkpoint} name each "
                f"other as base in a loop: {loop}"
            )
        else:
            parent = self._retrieve(base, (*seen, name))
        return AssetCard(name, metadata, parent)


def _hub(family: str):
    if family == TEXT_FAMILY:
        from sonar.models.sonar_text import get_sonar_text_encoder_hub

        return get_sonar_text_encoder_hub()
    from sonar.models.sonar_speech import get_sonar_speech_encoder_hub

    return get_sonar_speech_encoder_hub()


def load_encoder(spec: ModelSpec, card, family: str, device: torch.device) -> torch.nn.Module:
    """Load (``pretrained``) or build with seeded random weights (``random``) one encoder."""
    hub = _hub(family)
    dtype = resolve_dtype(spec.dtype, device)
    if spec.init == "random":
        torch.manual_seed(spec.seed)
        model = hub.create_new_model(hub.get_model_config(card), device=device, dtype=dtype)
    elif spec.init == "pretrained":
        model = hub.load_model(card, device=device, dtype=dtype, progress=False)
    else:
        raise ValueError(f"models.{spec.name}.init: unknown value {spec.init!r}")
    return model.eval()


class _Capture(TapCapture):
    """Tap hooks plus SONAR's frontend (which also yields the frame layout) and the pooler's
    cross-attended encoder output."""

    def __init__(self) -> None:
        super().__init__()
        self.layout = None

    def frontend(self, module: torch.nn.Module) -> None:
        def hook(_mod, _args, out):
            self.tensors["layer00"], self.layout = out

        self.handles.append(module.register_forward_hook(hook))

    def encoder_output_of(self, decoder: torch.nn.Module, name: str) -> None:
        """The encoder output a decoder cross-attends to (its third argument)."""

        def hook(_mod, args, kwargs):
            self.tensors[name] = args[2] if len(args) > 2 else kwargs["encoder_output"]

        self.handles.append(decoder.register_forward_pre_hook(hook, with_kwargs=True))


class SonarAdapter:
    """SONAR text encoder or per-language speech encoders behind the gapscope adapter protocol.

    The speech encoder depends on the language, so it is loaded at the first ``encode`` of a
    language (one at a time; loading another language's encoder releases the previous one).
    """

    family = "sonar"
    sampling_rate = 16_000

    def __init__(self, spec: ModelSpec, modality: str, device: torch.device | None = None):
        if modality not in ("text", "speech"):
            raise ValueError(f"unknown modality {modality!r}")
        require_fairseq2()
        self.spec = spec
        self.modality = modality
        self.device = device or default_device()
        self.options = options(spec)
        self.cards = Cards(spec)
        self.capture = _Capture()
        self.model: torch.nn.Module | None = None
        self.language: str | None = None
        if modality == "text":
            card = self.cards.get(self.options["text_encoder"], TEXT_FAMILY)
            self._attach(load_encoder(spec, card, TEXT_FAMILY, self.device))
            self.tokenizer = self._load_tokenizer()
            self.max_len = self._max_text_len()
        else:
            base = self.cards.get(self.options["speech_base"], SPEECH_FAMILY)
            config = _hub(SPEECH_FAMILY).get_model_config(base)
            self.n_layers = config.w2v2_encoder_config.num_encoder_layers
            self._fbank = None

    # -- loading -------------------------------------------------------------------------

    def _attach(self, model: torch.nn.Module) -> None:
        """Make ``model`` the current encoder and hook its taps."""
        self.capture.remove()
        self.model = model
        blocks = model.encoder.layers
        self.n_layers = len(blocks)
        self.capture.frontend(model.encoder_frontend)
        for i, block in enumerate(blocks, start=1):
            self.capture.output_of(block, f"layer{i:02d}")
        if self.modality == "speech":
            # The pooler overrides __call__ (module hooks never fire on it): hook its decoder.
            self.capture.encoder_output_of(model.encoder_pooler.decoder, "pre_pooler")

    def _load_tokenizer(self):
        from fairseq2.data.tokenizers import load_tokenizer

        card = self.cards.get(self.options["tokenizer"])
        tokenizer = load_tokenizer(card)
        size = self.model.encoder_frontend.embed.num_embeddings
        if tokenizer.vocab_info.size != size:
            raise ValueError(
                f"models.{self.spec.name}: tokenizer of card {card.name!r} has "
                f"{tokenizer.vocab_info.size} entries but the text encoder embeds {size}"
            )
        return tokenizer

    def _max_text_len(self) -> int | None:
        pos = self.model.encoder_frontend.pos_encoder
        return None if pos is None else int(pos.max_seq_len)

    def _speech_model(self, language: str) -> None:
        """Load the speech encoder of ``language`` unless it is the current one."""
        if self.language == language and self.model is not None:
            return
        code = languages.get(language).sonar_speech
        if code is None:
            raise ValueError(f"{self.spec.name}: SONAR has no speech encoder for {language}")
        name = self.options["speech_encoder"].format(lang=code)
        card = self.cards.get(name, SPEECH_FAMILY)
        self.model = None
        self.capture.remove()
        model = load_encoder(self.spec, card, SPEECH_FAMILY, self.device)
        layers = len(model.encoder.layers)
        if layers != self.n_layers:
            raise ValueError(
                f"models.{self.spec.name}: speech encoder {name!r} has {layers} layers but "
                f"{self.options['speech_base']!r} declared {self.n_layers}; set "
                "options.speech_base to a card of the same architecture"
            )
        self._attach(model)
        self.language = language
        log.info("%s: loaded speech encoder %s for %s", self.spec.name, name, language)

    # -- protocol ------------------------------------------------------------------------

    def taps(self, modality: str | None = None) -> list[str]:
        """Ordered taps of the loaded model for its modality."""
        layers = [f"layer{i:02d}" for i in range(self.n_layers + 1)]
        if (modality or self.modality) == "text":
            return [*layers, "pooled"]
        return [*layers, "pre_pooler", "pooled"]

    def _text_code(self, language: str) -> str:
        code = languages.get(language).sonar_text
        if code is None:
            raise ValueError(f"{self.spec.name}: SONAR's text encoder has no code for {language}")
        return code

    def _token_ids(self, sentences: Sequence[str], language: str) -> list[torch.Tensor]:
        encoder = self.tokenizer.create_encoder(lang=self._text_code(language), mode="source")
        ids = [encoder(s) for s in sentences]
        if self.max_len is not None:
            long = sum(int(len(x) > self.max_len) for x in ids)
            if long:
                log.warning("%d sentence(s) truncated to %d tokens", long, self.max_len)
            ids = [x[: self.max_len] for x in ids]
        return ids

    def text_lengths(self, sentences: Sequence[str], language: str) -> list[int]:
        """Token counts including the language tag and ``</s>`` (after truncation)."""
        return [len(x) for x in self._token_ids(sentences, language)]

    @torch.inference_mode()
    def encode(self, inputs: Sequence, language: str, modality: str | None = None) -> Pooled:
        """Pool every tap for one batch of sentences (text) or 16 kHz waveforms (speech)."""
        modality = check_modality(self.modality, modality)
        self.capture.tensors.clear()
        if modality == "text":
            return self._encode_text(list(inputs), language)
        self._speech_model(language)
        return self._encode_speech(list(inputs))

    def _encode_text(self, sentences: list[str], language: str) -> Pooled:
        from fairseq2.nn import BatchLayout

        ids = self._token_ids(sentences, language)
        lens = torch.tensor([len(x) for x in ids])
        pad = self.tokenizer.vocab_info.pad_idx
        seqs = torch.full((len(ids), int(lens.max())), pad, dtype=torch.int64)
        for i, x in enumerate(ids):
            seqs[i, : len(x)] = x
        seqs = seqs.to(self.device)
        out = self.model(seqs, BatchLayout.of(seqs, lens.tolist()))
        # Content = after the language tag, before </s> (a truncated sentence has no </s>).
        eos = self.tokenizer.vocab_info.eos_idx
        ends = lens - torch.tensor([int(x[-1] == eos) for x in ids])
        positions = torch.arange(seqs.shape[1]).unsqueeze(0)
        content = (positions >= 1) & (positions < ends.unsqueeze(1))
        pooled = pool(self.capture.tensors, dict.fromkeys(self.capture.tensors, content))
        pooled.vectors["pooled"] = out.sentence_embeddings.float().cpu().numpy()
        pooled.lengths["pooled"] = lens.to(torch.int32).numpy()
        return pooled

    def _fbank_converter(self):
        if self._fbank is None:
            from fairseq2.data.audio import WaveformToFbankConverter

            self._fbank = WaveformToFbankConverter(
                num_mel_bins=80,
                waveform_scale=2**15,
                channel_last=True,
                standardize=True,
                dtype=torch.float32,
            )
        return self._fbank

    def fbank(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, list[int]]:
        """SONAR's speech input: per-utterance fbank, zero-padded to an even frame count."""
        convert = self._fbank_converter()
        feats = []
        for wave in waves:
            wave = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32))
            feats.append(convert({"waveform": wave[:, None], "sample_rate": 16000.0})["fbank"])
        lens = [int(f.shape[0]) for f in feats]
        width = max(lens) + max(lens) % 2
        seqs = torch.zeros(len(feats), width, feats[0].shape[1], dtype=torch.float32)
        for i, f in enumerate(feats):
            seqs[i, : f.shape[0]] = f
        return seqs, lens

    def _encode_speech(self, waves: list[np.ndarray]) -> Pooled:
        from fairseq2.nn import BatchLayout

        waves = check_waves(waves, self.spec.name)
        seqs, lens = self.fbank(waves)
        short = [i for i, n in enumerate(lens) if n < MIN_FBANK_FRAMES]
        if short:
            raise ValueError(
                f"{self.spec.name}: input(s) {short} are too short for SONAR's speech encoder "
                f"({[len(waves[i]) for i in short]} samples; it needs {MIN_FBANK_FRAMES} fbank "
                f"frames, at least {MIN_SAMPLES} samples = {MIN_SAMPLES / 16:g} ms at 16 kHz)"
            )
        dtype = next(self.model.parameters()).dtype
        seqs = seqs.to(self.device, dtype)
        out = self.model(seqs, BatchLayout.of(seqs, lens))
        frames = torch.as_tensor(list(self.capture.layout.seq_lens))
        width = self.capture.tensors["layer00"].shape[1]
        mask = torch.arange(width).unsqueeze(0) < frames.unsqueeze(1)
        pooled = pool(self.capture.tensors, dict.fromkeys(self.capture.tensors, mask))
        pooled.vectors["pooled"] = out.sentence_embeddings.float().cpu().numpy()
        pooled.lengths["pooled"] = frames.to(torch.int32).numpy()
        return pooled
