"""Speech-LLMs in transformers (Qwen2-Audio, Voxtral, Audio Flamingo 3): one generic adapter.

The same sentence enters the *same* prompt twice: as its transcript (text modality) and as
its audio (speech modality). The prompt is one user turn of the checkpoint's own chat
format, rendered exactly as its processor renders it: ``options.prompt`` with ``{content}``
standing for the sentence, the audio as the audio item of the turn (the template's own
markers around it), the text around ``{content}`` as text items, in that order:

    default prompt: "{content}\\nRepeat this sentence."  (the audio first, as in the
                    official examples of all three families)
    Qwen2-Audio speech: <|im_start|>system ... <|im_start|>user\\nAudio 1: <|audio_bos|>
                        <|AUDIO|> x n <|audio_eos|>\\n\\nRepeat this sentence.<|im_end|>
                        \\n<|im_start|>assistant\\n
    text (every family): <chat prefix> <transcript>\\nRepeat this sentence. <chat suffix>

Options (``models.<name>.options``, part of the model's identity):

- ``prompt`` (default ``"{content}\\nRepeat this sentence."``): the user text, with exactly
  one ``{content}``. The LLM is causal, so text after ``{content}`` changes no pooled
  vector; text before it conditions both modalities alike. AF3's template puts the audio
  first whatever the order of the turn.
- ``chat`` (default true): wrap the prompt in the checkpoint's chat format (Qwen2-Audio,
  AF3: its chat template with a generation prompt, the processor's or else the tokenizer's;
  a checkpoint with neither is refused rather than silently run without; Voxtral: the
  mistral-common instruct format ``<s>[INST] ... [/INST]``). ``false`` gives the bare
  prompt for base checkpoints: Qwen2-Audio's documented ``<|audio_bos|><|AUDIO|> x n
  <|audio_eos|>`` followed by the instruction, Voxtral's ``<s>`` + ``[BEGIN_AUDIO]``.

Only the content positions are pooled: the transcript's tokens for text, the audio
placeholder positions for speech (where the LLM receives the projected audio embeddings),
never the chat template, BOS, role tokens, instruction, audio label or open/close markers.

Taps
----
text:   ``layer00`` (token embeddings, the input of decoder block 1) ... ``layerNN`` (raw
        output of block NN), ``llm_out`` (after the LLM's final norm).
speech: ``encoder_out`` (raw output of the audio encoder's last block, about 50 frames/s,
        before any length adaptation: Qwen2-Audio / AF3 average-pool 2x and project,
        Voxtral stacks 4 frames and projects), ``projector_out`` (the connector's output
        at the real audio tokens: exactly what the LLM receives, 25 tokens/s for
        Qwen2-Audio / AF3, 12.5 for Voxtral), then ``layer00`` ... ``layerNN`` and
        ``llm_out`` at the audio positions. ``projector_out`` equals speech ``layer00``
        (the LLM's input) by construction; it is read by its own hook as a check.

Every LLM tap is read by hooks (a pre-hook on block 1, forward hooks on the blocks and the
final norm), so the last ``layerNN`` is the raw block output, not the normed one that
transformers puts last in ``hidden_states``.

Audio padding: Whisper-style encoders take fixed windows (30 s for the real checkpoints).
Qwen2-Audio and AF3 mask padded frames in the encoder and emit audio tokens for real
frames only. Voxtral's encoder attends to the padding and the LLM receives a fixed 375
tokens per 30 s chunk (``max_source_positions / 4`` in general); of those, the first
``sum over chunks of ceil(((m_c - 1) // 2 + 1) / 4)`` are real, ``m_c`` being the real mel
frames (``ceil(samples / 160)``) in chunk ``c``, so a token is real when it covers at least
one real sample. Pooling uses real frames/tokens only; padded audio tokens stay in the
prompt (the model expects them) but are never pooled.

Long audio: Qwen2-Audio takes one window (30 s) and raises a clear error beyond it;
Voxtral splits the audio into consecutive 30 s chunks (as its processor does); AF3 into
30 s windows, up to its processor's ``max_audio_len`` (600 s).

Batches are right-padded with an attention mask (positions start at 0 for every row), so
a padded batch gives the vectors of one-at-a-time runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gapscope.models import ModelSpec
from gapscope.models.base import (
    Pooled,
    TapCapture,
    check_modality,
    check_waves,
    default_device,
    load_processor,
    masked_mean,
    pool,
    resolve_dtype,
)

DEFAULT_PROMPT = "{content}\nRepeat this sentence."
CONTENT = "{content}"
OPTIONS = ("prompt", "chat")


@dataclass(frozen=True)
class Architecture:
    """What the adapter needs to know of one speech-LLM family."""

    model_class: str
    audio_token: str  # the placeholder the processor expands to one token per audio frame
    bare_open: tuple[str, ...] = ()  # around the audio tokens in the bare prompt
    bare_close: tuple[str, ...] = ()


ARCHITECTURES: dict[str, Architecture] = {
    "qwen2_audio": Architecture(
        "Qwen2AudioForConditionalGeneration", "<|AUDIO|>", ("<|audio_bos|>",), ("<|audio_eos|>",)
    ),
    "voxtral": Architecture("VoxtralForConditionalGeneration", "[AUDIO]", ("[BEGIN_AUDIO]",)),
    "audioflamingo3": Architecture("AudioFlamingo3ForConditionalGeneration", "<sound>"),
}

# Voxtral's chat format is mistral-common's instruct format, which transformers' processor
# renders only with mistral-common installed: <s>[INST] + the user's chunks in order, with
# no separator (an audio chunk is [BEGIN_AUDIO] + [AUDIO] x n) + [/INST]. Bare: <s> alone.
VOXTRAL_CHAT = (("<s>", "[INST]"), ("[/INST]",))
VOXTRAL_BARE = (("<s>",), ())


def _check_options(spec: ModelSpec) -> tuple[str, bool]:
    unknown = sorted(set(spec.options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"models.{spec.name}.options: unknown key(s) {unknown} for adapter speech_llm; "
            f"known: {list(OPTIONS)}"
        )
    prompt = spec.options.get("prompt", DEFAULT_PROMPT)
    if not isinstance(prompt, str) or prompt.count(CONTENT) != 1:
        raise ValueError(
            f"models.{spec.name}.options.prompt must be a string with exactly one {CONTENT} "
            f"(where the transcript or the audio goes), got {prompt!r}"
        )
    chat = spec.options.get("chat", True)
    if not isinstance(chat, bool):
        raise ValueError(f"models.{spec.name}.options.chat must be true or false, got {chat!r}")
    return prompt, chat


def load_model(spec: ModelSpec, device: torch.device):
    """The speech-LLM of ``spec`` (pretrained weights, or seeded random ones) and its config.

    The architecture comes from the checkpoint's config (``model_type``); remote code runs
    only when the model's config sets ``trust_remote_code: true``.
    """
    import transformers
    from transformers import AutoConfig
    from transformers.utils import logging as transformers_logging

    common = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    config = AutoConfig.from_pretrained(spec.checkpoint, **common)
    if config.model_type not in ARCHITECTURES:
        raise ValueError(
            f"models.{spec.name}: checkpoint {spec.checkpoint} is a {config.model_type!r} model; "
            f"adapter speech_llm supports {sorted(ARCHITECTURES)}"
        )
    cls = getattr(transformers, ARCHITECTURES[config.model_type].model_class)
    dtype = resolve_dtype(spec.dtype, device)
    if spec.init == "random":
        torch.manual_seed(spec.seed)
        model = cls._from_config(config, dtype=dtype)
    elif spec.init == "pretrained":
        verbosity = transformers_logging.get_verbosity()
        bars = transformers_logging.is_progress_bar_enabled()
        transformers_logging.set_verbosity_error()  # the load report lists the unused lm_head
        transformers_logging.disable_progress_bar()
        try:
            model, info = cls.from_pretrained(
                spec.checkpoint, config=config, dtype=dtype, output_loading_info=True, **common
            )
        finally:
            transformers_logging.set_verbosity(verbosity)
            if bars:
                transformers_logging.enable_progress_bar()
        missing = [k for k in info["missing_keys"] if not k.startswith("lm_head.")]
        if missing:
            raise ValueError(
                f"models.{spec.name}: checkpoint {spec.checkpoint} lacks {len(missing)} weights "
                f"(e.g. {missing[:3]}); wrong checkpoint or an incomplete download?"
            )
    else:
        raise ValueError(f"models.{spec.name}.init: unknown value {spec.init!r}")
    if hasattr(model, "lm_head"):
        del model.lm_head  # hidden states only; the vocabulary projection is large
    return model.eval().to(device), config


@dataclass
class _Audio:
    """Model inputs of a speech batch and the bookkeeping of real frames and tokens.

    The audio encoder sees ``rows`` windows (one or more per sentence, in sentence order);
    ``row_frames`` / ``row_tokens`` are the real encoder frames / real audio tokens of each
    window; a sentence gets ``placed[b]`` audio placeholders of which the first
    ``real[b]`` are real.
    """

    inputs: dict[str, torch.Tensor]
    rows_per_sentence: list[int]
    row_frames: list[int]
    row_tokens: list[int]
    placed: list[int]

    @property
    def real(self) -> list[int]:
        out, start = [], 0
        for n in self.rows_per_sentence:
            out.append(int(sum(self.row_tokens[start : start + n])))
            start += n
        return out


class SpeechLLMAdapter:
    """A speech-LLM's audio encoder, connector and LLM layers behind the adapter protocol."""

    sampling_rate = 16_000

    def __init__(self, spec: ModelSpec, modality: str, device: torch.device | None = None):
        self.spec = spec
        self.family = spec.adapter
        self.modality = modality
        self.device = device or default_device()
        self.prompt, self.chat = _check_options(spec)
        self.model, self.config = load_model(spec, self.device)
        self.arch = self.config.model_type
        parts = ("tokenizer",) if modality == "text" else ("tokenizer", "feature_extractor")
        self.processor = load_processor(spec, parts)
        self.tokenizer = self.processor.tokenizer
        self.features = getattr(self.processor, "feature_extractor", None)
        inner = self.model.model
        self.llm = inner.language_model
        self.audio_token_id = int(self.config.audio_token_id)
        self._check_audio_token()
        self._prefix, self._suffix = self._template_ids(modality)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id or 0
        self.capture = TapCapture()
        blocks = self.llm.layers
        self.n_layers = len(blocks)
        self.capture.input_of(blocks[0], "layer00")
        for i, block in enumerate(blocks, start=1):
            self.capture.output_of(block, f"layer{i:02d}")
        self.capture.output_of(self.llm.norm, "llm_out")
        if modality == "speech":
            self.tower = inner.audio_tower
            self.capture.output_of(self.tower.layers[-1], "encoder_out")
            self.capture.output_of(inner.multi_modal_projector, "projector_out")
            self._check_mel_bins()
            self.window = self._window()  # (mel frames, samples), checked once
        else:
            # the text view never touches the audio encoder and connector
            del inner.audio_tower, inner.multi_modal_projector

    # -- prompt ------------------------------------------------------------------------

    def _special_id(self, token: str) -> int:
        tid = self.tokenizer.convert_tokens_to_ids(token)
        unknown = tid == self.tokenizer.unk_token_id and token != self.tokenizer.unk_token
        if tid is None or unknown:
            raise ValueError(
                f"models.{self.spec.name}: the tokenizer of {self.spec.checkpoint} has no "
                f"special token {token!r}, which {self.arch} prompts need"
            )
        return int(tid)

    def _check_audio_token(self) -> None:
        token = getattr(self.processor, "audio_token", None)
        if token is not None and self._special_id(token) != self.audio_token_id:
            raise ValueError(
                f"models.{self.spec.name}: the processor's audio token {token!r} has id "
                f"{self._special_id(token)} but the model's config says {self.audio_token_id}"
            )

    def _ids(self, parts: Sequence[str]) -> list[int]:
        """Token ids of special tokens (by name) and plain text, in order."""
        special = set(self.tokenizer.all_special_tokens) | {"[INST]", "[/INST]", "[BEGIN_AUDIO]"}
        ids: list[int] = []
        for part in parts:
            ids += [self._special_id(part)] if part in special else self._encode(part)
        return ids

    def _encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []

    def _template_ids(self, modality: str) -> tuple[list[int], list[int]]:
        """Token ids before and after the content (the transcript, or the audio tokens).

        The turn is rendered as the checkpoint's processor renders it: the chat template
        over the text before ``{content}``, the content (an audio item for speech) and the
        text after it, then split where the content stands. For speech that is the audio
        placeholder, so the template's own markers (Qwen2-Audio's ``Audio 1:
        <|audio_bos|>`` ... ``<|audio_eos|>``) fall in the prefix and suffix.
        """
        before, after = self.prompt.split(CONTENT)
        arch = ARCHITECTURES[self.arch]
        speech = modality == "speech"
        if self.arch == "voxtral":
            opening, closing = VOXTRAL_CHAT if self.chat else VOXTRAL_BARE
            audio_open = arch.bare_open if speech else ()
            head = [*opening, before, *audio_open]
            return self._ids(head), self._ids([after, *closing])
        sentinel = "\x00GAPSCOPE_CONTENT\x00"
        marker = arch.audio_token if speech else sentinel
        if not self.chat:
            content = "".join((*arch.bare_open, marker, *arch.bare_close)) if speech else marker
            rendered = before + content + after
        elif getattr(self.processor, "chat_template", None):
            if speech:
                texts = [{"type": "text", "text": t} for t in (before, after)]
                items = [*texts[:1], {"type": "audio", "audio": "content"}, *texts[1:]]
                items = [item for item in items if item.get("text", True)]  # no empty texts
            else:
                items = [{"type": "text", "text": before + sentinel + after}]
            rendered = self.processor.apply_chat_template(
                [{"role": "user", "content": items}], tokenize=False, add_generation_prompt=True
            )
            if isinstance(rendered, list):
                rendered = rendered[0]
        elif getattr(self.tokenizer, "chat_template", None):  # kept in tokenizer_config.json
            rendered = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": before + marker + after}],
                tokenize=False,
                add_generation_prompt=True,
            )
        else:
            raise ValueError(
                f"models.{self.spec.name}: options.chat is true but {self.spec.checkpoint} "
                "ships no chat template; add one, or set options.chat: false (base checkpoints)"
            )
        if rendered.count(marker) != 1:
            raise ValueError(
                f"{self.spec.checkpoint}: cannot locate the {'audio' if speech else 'user text'} "
                "in its chat template"
            )
        head, tail = rendered.split(marker)
        return self._encode(head), self._encode(tail)

    def taps(self, modality: str | None = None) -> list[str]:
        """Ordered taps of the loaded model for a modality (in data-flow order)."""
        layers = [f"layer{i:02d}" for i in range(self.n_layers + 1)]
        if (modality or self.modality) == "text":
            return [*layers, "llm_out"]
        return ["encoder_out", "projector_out", *layers, "llm_out"]

    def content_ids(self, sentence: str) -> list[int]:
        """Token ids of the transcript alone (the pooled positions of the text view)."""
        return self._encode(sentence)

    def text_lengths(self, sentences: Sequence[str], language: str) -> list[int]:
        """Prompt length in tokens (template + transcript), used to batch by length."""
        fixed = len(self._prefix) + len(self._suffix)
        return [fixed + len(self.content_ids(s)) for s in sentences]

    # -- forward -----------------------------------------------------------------------

    @torch.inference_mode()
    def encode(self, inputs: Sequence, language: str, modality: str | None = None) -> Pooled:
        """Pool every tap for one batch of sentences (text) or 16 kHz waveforms (speech)."""
        modality = check_modality(self.modality, modality)
        self.capture.tensors.clear()
        try:
            if modality == "text":
                return self._encode_text([str(s) for s in inputs])
            return self._encode_speech(check_waves(inputs, self.spec.name))
        finally:
            self.capture.tensors.clear()

    def _batch(self, rows: list[tuple[list[int], int, int]]):
        """Right-padded ids, attention mask and content mask from (ids, start, n_content)."""
        width = max(len(ids) for ids, _, _ in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        content = torch.zeros((len(rows), width), dtype=torch.bool)
        for b, (row, start, n) in enumerate(rows):
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention[b, : len(row)] = 1
            content[b, start : start + n] = True
        return ids.to(self.device), attention.to(self.device), content.to(self.device)

    def _encode_text(self, sentences: list[str]) -> Pooled:
        rows = []
        for sentence in sentences:
            body = self.content_ids(sentence)
            if not body:
                raise ValueError(f"{self.spec.name}: empty transcript {sentence!r}")
            rows.append(([*self._prefix, *body, *self._suffix], len(self._prefix), len(body)))
        ids, attention, content = self._batch(rows)
        self.llm(input_ids=ids, attention_mask=attention, use_cache=False)
        tensors = dict(self.capture.tensors)
        return pool(tensors, {tap: content for tap in tensors})

    def speech_prompt_ids(self, n_audio_tokens: int) -> list[int]:
        """The token ids of the speech prompt around ``n_audio_tokens`` audio tokens."""
        return [*self._prefix, *[self.audio_token_id] * n_audio_tokens, *self._suffix]

    def _encode_speech(self, waves: list[np.ndarray]) -> Pooled:
        audio = self._audio_inputs(waves)
        real = audio.real
        rows = []
        for n_placed, n_real in zip(audio.placed, real, strict=True):
            if n_real < 2:  # Qwen2-Audio reads a lone audio token as a legacy prompt
                raise ValueError(
                    f"{self.spec.name}: audio too short ({n_real} real audio token(s); "
                    "at least 2 are needed, about 0.1 s)"
                )
            rows.append((self.speech_prompt_ids(n_placed), len(self._prefix), n_real))
        ids, attention, content = self._batch(rows)
        dtype = next(self.model.parameters()).dtype
        inputs = {
            k: v.to(self.device, dtype) if v.is_floating_point() else v.to(self.device)
            for k, v in audio.inputs.items()
        }
        self.model.model(input_ids=ids, attention_mask=attention, use_cache=False, **inputs)
        tensors = dict(self.capture.tensors)
        encoder = tensors.pop("encoder_out")
        projector = tensors.pop("projector_out")
        if projector.dim() == 2:  # Voxtral projects the flattened windows
            projector = projector.reshape(len(audio.row_tokens), -1, projector.shape[-1])
        pooled = pool(tensors, {tap: content for tap in tensors})
        for tap, hidden, per_row in (
            ("encoder_out", encoder, audio.row_frames),
            ("projector_out", projector, audio.row_tokens),
        ):
            vec, lengths = _pool_rows(hidden, per_row, audio.rows_per_sentence)
            pooled.vectors[tap], pooled.lengths[tap] = vec, lengths
        order = self.taps("speech")
        return Pooled({t: pooled.vectors[t] for t in order}, {t: pooled.lengths[t] for t in order})

    # -- audio front ends ---------------------------------------------------------------

    def _check_mel_bins(self) -> None:
        """The extractor's mel bins must be what the audio encoder's first conv reads."""
        bins, expected = int(self.features.feature_size), int(self.tower.config.num_mel_bins)
        if bins != expected:
            raise ValueError(
                f"models.{self.spec.name}: the feature extractor of {self.spec.checkpoint} "
                f"gives {bins} mel bins but the audio encoder reads {expected}"
            )

    def _window(self) -> tuple[int, int]:
        """(mel frames, samples) of one encoder window, checked against the feature extractor."""
        conv = self.tower.conv1.stride[0] * self.tower.conv2.stride[0]
        frames = int(self.tower.config.max_source_positions) * conv
        samples = frames * int(self.features.hop_length)
        if int(self.features.n_samples) != samples:
            raise ValueError(
                f"models.{self.spec.name}: the feature extractor pads to "
                f"{self.features.n_samples} samples but the audio encoder takes windows of "
                f"{frames} mel frames ({samples} samples); mismatched processor and model?"
            )
        return frames, samples

    def _features(self, waves: list[np.ndarray], **kw):
        return self.features(
            waves,
            sampling_rate=self.sampling_rate,
            return_attention_mask=True,
            return_tensors="pt",
            **kw,
        )

    def _audio_inputs(self, waves: list[np.ndarray]) -> _Audio:
        frames, samples = self.window
        seconds = samples / self.sampling_rate
        if self.arch == "qwen2_audio":
            too_long = [len(w) / self.sampling_rate for w in waves if len(w) > samples]
            if too_long:
                raise ValueError(
                    f"{self.spec.name}: Qwen2-Audio takes at most {seconds:g} s of audio per "
                    f"input (max_source_positions={self.tower.config.max_source_positions}); got "
                    f"{max(too_long):.1f} s. Split or drop longer utterances."
                )
            feats = self._features(waves, padding="max_length")
            mel = feats["attention_mask"].sum(-1)
            enc, tok = self.tower._get_feat_extract_output_lengths(mel)
            return _Audio(
                {
                    "input_features": feats["input_features"],
                    "feature_attention_mask": feats["attention_mask"],
                },
                [1] * len(waves),
                enc.tolist(),
                tok.tolist(),
                tok.tolist(),
            )
        if self.arch == "audioflamingo3":
            limit = float(getattr(self.processor, "max_audio_len", 600))
            windows, per_sentence = [], []
            for w in waves:
                if len(w) > limit * self.sampling_rate:
                    raise ValueError(
                        f"{self.spec.name}: Audio Flamingo 3 takes at most {limit:g} s of audio "
                        f"({seconds:g} s windows); got {len(w) / self.sampling_rate:.1f} s"
                    )
                n = math.ceil(len(w) / samples)
                windows += [w[i * samples : (i + 1) * samples] for i in range(n)]
                per_sentence.append(n)
            feats = self._features(windows, padding="max_length")
            mel = feats["attention_mask"].sum(-1)
            enc, tok = self.tower._get_feat_extract_output_lengths(mel)
            placed, start = [], 0
            for n in per_sentence:
                placed.append(int(tok[start : start + n].sum()))
                start += n
            return _Audio(
                {
                    "input_features": feats["input_features"],
                    "input_features_mask": feats["attention_mask"],
                },
                per_sentence,
                enc.tolist(),
                tok.tolist(),
                placed,
            )
        # voxtral: each utterance padded to whole windows, features split per window
        stack = int(self.config.audio_config.intermediate_size) // int(
            self.config.audio_config.hidden_size
        )
        per_window = frames // 2 // stack
        rows, per_sentence, row_frames, row_tokens, placed = [], [], [], [], []
        for w in waves:
            feats = self._features(
                [w], padding="longest", pad_to_multiple_of=samples, truncation=False
            )
            mel = feats["input_features"][0]  # (n_mels, n_windows * frames)
            n = mel.shape[-1] // frames
            rows.append(mel.reshape(mel.shape[0], n, frames).transpose(0, 1))
            real_mel = int(feats["attention_mask"][0].sum())
            for c in range(n):
                m = min(frames, max(0, real_mel - c * frames))
                e = (m - 1) // 2 + 1 if m > 0 else 0
                row_frames.append(e)
                row_tokens.append(math.ceil(e / stack))
            per_sentence.append(n)
            placed.append(n * per_window)
        return _Audio(
            {"input_features": torch.cat(rows)}, per_sentence, row_frames, row_tokens, placed
        )


def _pool_rows(
    hidden: torch.Tensor, row_lengths: Sequence[int], rows_per_sentence: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Masked mean per sentence over the real positions of all its windows.

    ``hidden`` is (rows, T, D); row r has ``row_lengths[r]`` real positions at its start.
    """
    n_rows, width, _ = hidden.shape
    if n_rows != len(row_lengths):
        raise ValueError(f"{n_rows} encoder windows but {len(row_lengths)} lengths")
    lengths = torch.as_tensor(list(row_lengths), device=hidden.device)
    row_mask = torch.arange(width, device=hidden.device)[None, :] < lengths[:, None]
    vectors, counts, start = [], [], 0
    for n in rows_per_sentence:
        h = hidden[start : start + n].reshape(1, n * width, -1)
        m = row_mask[start : start + n].reshape(1, n * width)
        vectors.append(masked_mean(h, m))
        counts.append(int(m.sum()))
        start += n
    return torch.cat(vectors).cpu().numpy(), np.asarray(counts, dtype=np.int32)
