"""SALMONN (Tang et al., ICLR 2024; bytedance/SALMONN) assembled from transformers parts.

Architecture (as in the official ``model.py`` / ``models/salmonn.py``)
--------------------------------------------------------------------
waveform (16 kHz, at most 30 s)
  -> Whisper encoder (``WhisperModel.from_pretrained(...).encoder``; the feature extractor
     pads every input to 30 s, so 1500 frames at 50 Hz)            -> ``ln_speech``
  -> BEATs (:mod:`gapscope.models.beats`, about 50 tokens/s, zero-padded to 1500 after
     its LayerNorm)                                                  -> ``ln_audio``
  -> concatenate along channels (1280 + 768 = 2048 for the released models); as in the
     official code, position i pairs Whisper frame i with BEATs token i, although BEATs
     tokens run 8 mel patches per 160 ms step and are not time-aligned with the frames
  -> window-level Q-Former: windows of 17 frames, stride 17 (``second_per_window`` 0.333333
     x 1500 frames / 30 s, rounded), 88 windows per input; one learned query per window
     attends to its window (``Blip2QFormerModel``, BERT-base sizes, 2 layers, cross-attention
     in every layer, no text branch)
  -> ``speech_llama_proj`` (Linear to the LLM width)
  -> Vicuna (``LlamaModel``) with LoRA (r 8, alpha 32) on ``q_proj`` and ``v_proj`` (peft's
     default targets for LLaMA, which the official code uses by passing no target list).

Prompt. The official template ``USER: <Speech><SpeechHere></Speech> {prompt}\\nASSISTANT:``
is split at ``<SpeechHere>``; the LLM reads ``[BOS] + left + content + right``. Speech: the
content is the 88 Q-Former tokens (all of them, as the official model reads them). Text:
the content is the transcript's token embeddings, in the same template with the same
instruction (default: the official ASR prompt; ``options.prompt`` changes it). The LLM is
causal and the instruction follows the content, so the pooled states depend on ``[BOS]
USER: <Speech>`` and the content only: changing ``options.prompt`` leaves every tap as it
is; changing the left part of ``options.template`` changes every layer above ``layer00``.

Taps
----
both modalities: ``layer00`` (the LLM input embeddings) ... ``layerNN`` (raw output of LLM
    block NN, before the final RMSNorm), read by forward hooks.
speech only: ``qformer_in`` (the concatenated Whisper + BEATs features after their
    LayerNorms, the Q-Former's input) and ``qformer_out`` (Q-Former output after the
    projection: the speech tokens the LLM reads, so it equals speech ``layer00``).

Pooling: masked mean over content positions only. Never pooled: BOS and prompt tokens; for
speech, the windows that cover Whisper's padding after the audio ends. A 50 Hz frame j
covers samples [320 j, 320 (j + 1)) and is real when it starts before the audio ends, so a
clip of n samples has ``ceil(n / 320)`` real frames (``qformer_in`` pools these) and
``ceil(frames / 17)`` real windows (at most 88; ``qformer_out`` and the LLM layers pool
these). The LLM is causal, so the padded windows, which come after the real ones, do not
change what is pooled at any layer. ``options.speech_windows: all`` pools all 88 windows and
all 1500 frames instead (the padding-included variant). Audio longer than 30 s is an error
(the official code would silently cut it).

Loading and the key mapping
---------------------------
``spec.checkpoint`` is the SALMONN checkpoint (``salmonn_v1.pth`` for 13B,
``salmonn_7b_v0.pth`` for 7B; ``.safetensors`` also accepted), a directory holding exactly one
``salmonn*.pth`` / ``salmonn*.safetensors``, or a hub repo id (the size's file is downloaded).
It holds only the weights SALMONN trained; the rest comes from component checkpoints named
in ``spec.options`` (see :data:`SIZES` for the defaults of ``size: 7b | 13b``). Pickle files
are read with ``torch.load(weights_only=True)``; no remote code ever runs.

:func:`map_official_state_dict` renames the official keys to this module's keys by the rules
in :data:`KEY_RULES`, drops the keys listed in :data:`DROPPED_KEYS` (saved by the official
training code but unused at inference), and refuses any other key. The official names were
checked against bytedance/SALMONN: ``model.py`` (13B v1 inference), ``models/salmonn.py``
(7B / training code), ``models/modeling_llama.py`` (``inv_freq`` is a persistent buffer),
``runner.py`` (checkpoints = ``{"model": state_dict minus frozen parameters, ...}``, so
buffers stay in) and ``requirements.txt`` (peft 0.3.0, the first release with named
adapters, so LoRA keys read ``lora_A.default.weight``; keys without ``.default`` from older
peft are accepted too). SALMONN's LAVIS ``Qformer.py`` (``BertLMHeadModel``:
``bert.embeddings``, ``bert.encoder.layer.N.{attention,crossattention}.{self,output}``,
``intermediate_query``, ``output_query``) was read in a fork (searlion/SALMONN), the
original file not being in the searchable index. No real checkpoint was reachable, so the
mapping is tested on synthetic state dicts with these names.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

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
from gapscope.models.beats import BeatsConfig, BeatsEncoder, load_beats_state_dict

SAMPLING_RATE = 16_000
WHISPER_SECONDS = 30
WHISPER_FRAMES = 1500  # encoder frames of 30 s at 50 Hz
SAMPLES_PER_FRAME = SAMPLING_RATE * WHISPER_SECONDS // WHISPER_FRAMES  # 320
SECOND_PER_WINDOW = 0.333333
WINDOW = round(WHISPER_FRAMES * SECOND_PER_WINDOW / WHISPER_SECONDS)  # 17 frames
N_WINDOWS = (WHISPER_FRAMES - WINDOW) // WINDOW + 1  # 88

PROMPT_TEMPLATE = "USER: <Speech><SpeechHere></Speech> {}\nASSISTANT:"
ASR_PROMPT = "Recognize the speech and give me the transcription."
SPEECH_SLOT = "<SpeechHere>"

SIZES = {
    "7b": {
        "repo": "tsinghua-ee/SALMONN-7B",
        "checkpoint_file": "salmonn_7b_v0.pth",
        "llm": "lmsys/vicuna-7b-v1.5",
        "whisper": "openai/whisper-large-v2",
    },
    "13b": {
        "repo": "tsinghua-ee/SALMONN",
        "checkpoint_file": "salmonn_v1.pth",
        "llm": "lmsys/vicuna-13b-v1.1",
        "whisper": "openai/whisper-large-v2",
    },
}
"""Defaults per ``options.size``. BEATs has no hub home: ``options.beats`` must name
``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt`` (github.com/microsoft/unilm, beats)."""

QFORMER_DEFAULTS = {  # BERT-base, as SALMONN's init_speech_Qformer
    "hidden_size": 768,
    "num_hidden_layers": 2,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
}
LORA = {"r": 8, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]}
OPTIONS = {
    "size": "7b | 13b: default components and checkpoint file (default 7b)",
    "whisper": "Whisper hub id or folder (default openai/whisper-large-v2)",
    "beats": "BEATs checkpoint .pt (required unless the checkpoint folder has beats.pt)",
    "llm": "Vicuna hub id or folder (default per size)",
    "checkpoint_file": "file name inside a hub repo or folder checkpoint",
    "prompt": "instruction inside the template (default: the official ASR prompt)",
    "template": "prompt template with {} for the instruction and <SpeechHere> for content",
    "qformer": "Q-Former sizes (hidden_size, num_hidden_layers, num_attention_heads, "
    "intermediate_size); defaults BERT-base with 2 layers",
    "speech_windows": "real (default) | all: pool only windows covering audio, or all 88",
}
OPTIONS_FILE = "salmonn_options.json"
"""A checkpoint folder may carry default options (e.g. relative component paths)."""


# --------------------------------------------------------------------------- key mapping
_QF = r"speech_Qformer\.bert"
_LLAMA = r"llama_model\.base_model\.model\.model\.layers"
KEY_RULES: tuple[tuple[str, str], ...] = (
    (rf"{_QF}\.embeddings\.LayerNorm\.(weight|bias)", r"qformer.layernorm.\1"),
    (
        rf"{_QF}\.encoder\.layer\.(\d+)\.(attention|crossattention)\.self\."
        r"(query|key|value)\.(weight|bias)",
        r"qformer.encoder.layer.\1.\2.attention.\3.\4",
    ),
    (
        rf"{_QF}\.encoder\.layer\.(\d+)\.(attention|crossattention)\.output\."
        r"(dense|LayerNorm)\.(weight|bias)",
        r"qformer.encoder.layer.\1.\2.output.\3.\4",
    ),
    (
        rf"{_QF}\.encoder\.layer\.(\d+)\.(intermediate_query|output_query)\."
        r"(dense|LayerNorm)\.(weight|bias)",
        r"qformer.encoder.layer.\1.\2.\3.\4",
    ),
    (r"speech_query_tokens", "query_tokens"),
    (r"speech_llama_proj\.(weight|bias)", r"proj.\1"),
    (r"ln_(speech|audio)\.(weight|bias)", r"ln_\1.\2"),
    (
        rf"{_LLAMA}\.(\d+)\.self_attn\.(q_proj|v_proj)\.lora_(A|B)(?:\.default)?\.weight",
        r"llm.base_model.model.layers.\1.self_attn.\2.lora_\3.default.weight",
    ),
)
"""(official key regex, this module's key) pairs; every official key must match one."""

DROPPED_KEYS: tuple[str, ...] = (
    # BertLMHeadModel parts SALMONN never uses (the 7B code deletes them; v1 may keep them):
    rf"{_QF}\.embeddings\.(word_embeddings|position_embeddings)\.weight",
    rf"{_QF}\.embeddings\.position_ids",  # buffer
    rf"{_QF}\.encoder\.layer\.\d+\.(intermediate|output)\.(dense|LayerNorm)\.(weight|bias)",
    r"speech_Qformer\.cls\..+",  # the BERT LM head
    # LLaMA rotary buffer (persistent in the official transformers 4.28 code); recomputed
    # from the LLM config here:
    rf"{_LLAMA}\.\d+\.self_attn\.rotary_emb\.inv_freq",
)
"""Official keys that are dropped on purpose: the Q-Former's text branch and LM head (only
query tokens enter SALMONN's Q-Former) and LLaMA's rotary frequency buffers."""

_RULES = tuple((re.compile(p), r) for p, r in KEY_RULES)
_DROPPED = tuple(re.compile(p) for p in DROPPED_KEYS)
_OURS = (
    (
        re.compile(r"qformer\.layernorm\.(weight|bias)"),
        r"speech_Qformer.bert.embeddings.LayerNorm.\1",
    ),
    (
        re.compile(r"qformer\.encoder\.layer\.(\d+)\.(attention|crossattention)\.attention\.(.+)"),
        r"speech_Qformer.bert.encoder.layer.\1.\2.self.\3",
    ),
    (
        re.compile(r"qformer\.encoder\.layer\.(\d+)\.(.+)"),
        r"speech_Qformer.bert.encoder.layer.\1.\2",
    ),
    (re.compile(r"query_tokens"), "speech_query_tokens"),
    (re.compile(r"proj\.(weight|bias)"), r"speech_llama_proj.\1"),
    (re.compile(r"(ln_speech|ln_audio)\.(weight|bias)"), r"\1.\2"),
    (
        re.compile(
            r"llm\.base_model\.model\.layers\.(\d+)\.self_attn\.(q_proj|v_proj)\."
            r"lora_(A|B)\.default\.weight"
        ),
        r"llama_model.base_model.model.model.layers.\1.self_attn.\2.lora_\3.default.weight",
    ),
)


class CheckpointKeyError(ValueError):
    """A SALMONN checkpoint whose keys do not fit the assembled model."""


def map_official_state_dict(state_dict: dict) -> dict:
    """Rename an official SALMONN state dict to :class:`SalmonnModel` keys.

    Keys in :data:`DROPPED_KEYS` are left out; a key matching no rule raises
    :class:`CheckpointKeyError` listing every such key (and so do two official keys that
    map to the same key, e.g. ``lora_A.weight`` next to ``lora_A.default.weight``).
    """
    mapped: dict = {}
    unknown, duplicate = [], []
    for key, value in state_dict.items():
        if any(p.fullmatch(key) for p in _DROPPED):
            continue
        for pattern, target in _RULES:
            match = pattern.fullmatch(key)
            if match:
                new = match.expand(target)
                if new in mapped:
                    duplicate.append(key)
                mapped[new] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointKeyError(
            f"{len(unknown)} unknown key(s) in the SALMONN checkpoint (not in the documented "
            f"mapping): {unknown[:20]}"
        )
    if duplicate:
        raise CheckpointKeyError(f"keys mapped twice (with and without .default?): {duplicate}")
    return mapped


def to_official_state_dict(state_dict: dict) -> dict:
    """The inverse of :func:`map_official_state_dict` (peft 0.3 names, with ``.default``)."""
    out = {}
    for key, value in state_dict.items():
        for pattern, target in _OURS:
            match = pattern.fullmatch(key)
            if match:
                out[match.expand(target)] = value
                break
        else:
            raise CheckpointKeyError(f"{key!r} is not a SALMONN-trained weight")
    return out


def trained_state_dict(model: SalmonnModel) -> dict:
    """The weights SALMONN trains (and its checkpoints hold), under this module's keys."""
    prefixes = ("qformer.", "query_tokens", "proj.", "ln_speech.", "ln_audio.")
    return {
        k: v
        for k, v in model.state_dict().items()
        if k.startswith(prefixes) or (k.startswith("llm.") and ".lora_" in k)
    }


def load_salmonn_weights(model: SalmonnModel, mapped: dict, source: str) -> None:
    """Copy mapped checkpoint weights into ``model``; missing or extra keys raise."""
    own = trained_state_dict(model)
    missing = sorted(set(own) - set(mapped))
    extra = sorted(set(mapped) - set(own))
    if missing or extra:
        raise CheckpointKeyError(
            f"{source}: the checkpoint does not fit the assembled model "
            f"(wrong options.size, llm or qformer?); missing {len(missing)} key(s): "
            f"{missing[:20]}; not in the model {len(extra)} key(s): {extra[:20]}"
        )
    wrong = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in mapped.items()
        if tuple(v.shape) != tuple(own[k].shape)
    ]
    if wrong:
        raise CheckpointKeyError(f"{source}: shape mismatch (wrong options.size?): {wrong[:10]}")
    model.load_state_dict(mapped, strict=False)


# --------------------------------------------------------------------------- safe loading
def torch_load_safely(path: str | Path):
    """``torch.load`` that unpickles tensors and plain containers only (never code)."""
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: refused to unpickle with weights_only=True (the file holds objects "
            f"other than tensors and plain containers). Convert it to safetensors in a "
            f"trusted environment. Details: {str(err).splitlines()[0]}"
        ) from err


def read_salmonn_checkpoint(path: str | Path) -> dict:
    """The official-key state dict of a SALMONN checkpoint (``.pth`` or ``.safetensors``)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    obj = torch_load_safely(path)
    state = obj["model"] if isinstance(obj, dict) and isinstance(obj.get("model"), dict) else obj
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path}: not a SALMONN checkpoint ({{'model': state_dict}} expected)")
    return state


# --------------------------------------------------------------------------- the model
class SalmonnModel(nn.Module):
    """Whisper + BEATs -> window-level Q-Former -> projection -> LLaMA with LoRA.

    ``speech_encoder`` and ``beats`` may be None for a text-only model (the speech branch's
    trained weights are still built, so a checkpoint is validated whole).
    """

    def __init__(
        self,
        speech_encoder: nn.Module | None,
        beats: BeatsEncoder | None,
        qformer_config,
        llm: nn.Module,
        *,
        whisper_dim: int,
        beats_dim: int,
        feature_extractor=None,
    ):
        from transformers import Blip2QFormerModel

        super().__init__()
        self.speech_encoder = speech_encoder
        self.beats = beats
        self.feature_extractor = feature_extractor
        self.ln_speech = nn.LayerNorm(whisper_dim)
        self.ln_audio = nn.LayerNorm(beats_dim)
        self.qformer = Blip2QFormerModel(qformer_config)
        self.query_tokens = nn.Parameter(torch.zeros(1, 1, qformer_config.hidden_size))
        nn.init.normal_(self.query_tokens, std=qformer_config.initializer_range)
        self.llm = llm
        self.proj = nn.Linear(qformer_config.hidden_size, self.llm_base.config.hidden_size)

    @property
    def llm_base(self) -> nn.Module:
        """The LlamaModel inside the peft wrapper (LoRA layers are injected into it)."""
        return self.llm.get_base_model()

    def audio_features(self, waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Q-Former input (B, 1500, whisper + beats dims) and real frames per clip (B,)."""
        if self.speech_encoder is None or self.beats is None:
            raise RuntimeError("this SALMONN model was loaded for text only")
        waves = [np.asarray(w, dtype=np.float32).reshape(-1) for w in waves]
        for w in waves:
            check_audio_length(len(w))
        device = self.ln_speech.weight.device
        feats = self.feature_extractor(
            waves, sampling_rate=SAMPLING_RATE, return_tensors="pt"
        ).input_features
        whisper_dtype = next(self.speech_encoder.parameters()).dtype
        speech = self.speech_encoder(feats.to(device, whisper_dtype)).last_hidden_state
        speech = self.ln_speech(speech.float())
        audio = torch.zeros(
            speech.shape[0], speech.shape[1], self.ln_audio.normalized_shape[0], device=device
        )
        for i, w in enumerate(waves):  # one clip at a time: exactly the official batch of one
            tokens = self.beats(torch.from_numpy(w).to(device))[0]
            if tokens.shape[0] > speech.shape[1]:
                raise ValueError(f"BEATs made {tokens.shape[0]} tokens, more than Whisper's frames")
            audio[i, : tokens.shape[0]] = self.ln_audio(tokens.float())
        frames = torch.tensor([real_frames(len(w)) for w in waves], device=device)
        return torch.cat([speech, audio], dim=-1), frames

    def speech_tokens(self, features: torch.Tensor) -> torch.Tensor:
        """Window-level Q-Former + projection: (B, frames, C) -> (B, windows, LLM width)."""
        batch, _, channels = features.shape
        windows = features.unfold(1, WINDOW, WINDOW)  # (B, n_windows, C, WINDOW)
        n_windows = windows.shape[1]
        windows = windows.permute(0, 1, 3, 2).reshape(batch * n_windows, WINDOW, channels)
        queries = self.query_tokens.expand(windows.shape[0], -1, -1)
        out = self.qformer(query_embeds=queries, encoder_hidden_states=windows).last_hidden_state
        return self.proj(out).view(batch, n_windows, -1)


def check_audio_length(n_samples: int) -> None:
    """SALMONN reads at most 30 s (Whisper's window); longer clips are refused."""
    limit = SAMPLING_RATE * WHISPER_SECONDS
    if n_samples > limit:
        raise ValueError(
            f"audio of {n_samples / SAMPLING_RATE:.2f} s is longer than SALMONN's "
            f"{WHISPER_SECONDS} s window (the official code would cut it); shorten the clip"
        )
    if n_samples == 0:
        raise ValueError("empty audio")


def real_frames(n_samples: int) -> int:
    """50 Hz Whisper frames that start before the audio ends: ceil(n / 320), at most 1500."""
    return min(math.ceil(n_samples / SAMPLES_PER_FRAME), WHISPER_FRAMES)


def real_windows(n_samples: int) -> int:
    """Q-Former windows that cover real audio: ceil(real frames / 17), at most 88."""
    return min(math.ceil(real_frames(n_samples) / WINDOW), N_WINDOWS)


# --------------------------------------------------------------------------- loading
@dataclass
class Components:
    """Where each part of a SALMONN model comes from."""

    checkpoint: Path | None  # the SALMONN file (None when not needed: init random)
    whisper: str
    beats: str
    llm: str
    options: dict


def _check_options(options: dict, context: str) -> None:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(
            f"{context}: unknown SALMONN option(s) {unknown}; known: {sorted(OPTIONS)}"
        )
    size = options.get("size", "7b")
    if size not in SIZES:
        raise ValueError(f"{context}.size: {size!r} is not one of {sorted(SIZES)}")
    windows = options.get("speech_windows", "real")
    if windows not in ("real", "all"):
        raise ValueError(f"{context}.speech_windows: {windows!r} is not 'real' or 'all'")
    extra = sorted(set(options.get("qformer") or {}) - set(QFORMER_DEFAULTS))
    if extra:
        raise ValueError(
            f"{context}.qformer: unknown key(s) {extra}; known {sorted(QFORMER_DEFAULTS)}"
        )
    template = options.get("template", PROMPT_TEMPLATE)
    if template.count(SPEECH_SLOT) != 1 or "{}" not in template:
        raise ValueError(f"{context}.template: needs one {SPEECH_SLOT} and one {{}}")


def resolve_components(spec: ModelSpec) -> Components:
    """Component paths from the checkpoint, its folder's options file and ``spec.options``."""
    context = f"models.{spec.name}.options"
    source = Path(spec.checkpoint)
    folder = source if source.is_dir() else source.parent if source.is_file() else None
    options: dict = {}
    if folder is not None and (folder / OPTIONS_FILE).is_file():
        options.update(json.loads((folder / OPTIONS_FILE).read_text()))
    options.update(spec.options or {})
    _check_options(options, context)
    size = SIZES[options.get("size", "7b")]

    def component(name: str, default: str | None) -> str:
        value = options.get(name)
        if value is None and folder is not None:
            local = {"whisper": "whisper", "llm": "llm", "beats": "beats.pt"}[name]
            if (folder / local).exists():
                return str(folder / local)
        if value is None:
            if default is None:
                raise ValueError(
                    f"{context}.{name}: path to the BEATs checkpoint "
                    "(BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt) is required"
                )
            return default
        if folder is not None and not Path(value).is_absolute() and (folder / value).exists():
            return str(folder / value)
        return str(value)

    checkpoint = None
    if spec.init == "pretrained":
        checkpoint = _checkpoint_file(spec, source, options, size)
    return Components(
        checkpoint=checkpoint,
        whisper=component("whisper", size["whisper"]),
        beats=component("beats", None),
        llm=component("llm", size["llm"]),
        options=options,
    )


def _checkpoint_file(spec: ModelSpec, source: Path, options: dict, size: dict) -> Path:
    if source.is_file():
        return source
    if source.is_dir():
        if options.get("checkpoint_file"):
            return source / options["checkpoint_file"]
        found = sorted(
            p
            for p in source.iterdir()
            if p.suffix in (".pth", ".safetensors") and p.name.lower().startswith("salmonn")
        )
        if len(found) != 1:
            raise ValueError(
                f"models.{spec.name}.checkpoint: expected one salmonn*.pth or "
                f"salmonn*.safetensors in {source}, found {[p.name for p in found]}"
            )
        return found[0]
    from huggingface_hub import hf_hub_download

    name = options.get("checkpoint_file") or size["checkpoint_file"]
    return Path(hf_hub_download(spec.checkpoint, name, revision=spec.revision))


def _quiet_transformers():
    from transformers.utils import logging as transformers_logging

    class _Quiet:
        def __enter__(self):
            self.level = transformers_logging.get_verbosity()
            transformers_logging.set_verbosity_error()

        def __exit__(self, *exc):
            transformers_logging.set_verbosity(self.level)

    return _Quiet()


def wrap_lora(base: nn.Module) -> nn.Module:
    """peft LoRA on q_proj / v_proj (r 8, alpha 32), as SALMONN; dropout off (inference)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(**LORA, lora_dropout=0.0, bias="none", inference_mode=True)
    return get_peft_model(base, config)


def load_model(
    spec: ModelSpec, modality: str, device: torch.device, components: Components | None = None
) -> tuple[SalmonnModel, object]:
    """Build SALMONN (and its tokenizer) for one modality; text skips Whisper and BEATs.

    ``init: random`` builds every part from its config with seeded random weights (each part
    from its own seed offset, so the text and speech models share one random LLM).
    """
    from transformers import (
        AutoTokenizer,
        Blip2QFormerConfig,
        LlamaConfig,
        LlamaModel,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperModel,
    )
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if spec.trust_remote_code:
        raise ValueError(
            f"models.{spec.name}.trust_remote_code: SALMONN is assembled from transformers "
            "classes and never runs checkpoint code; set it to false"
        )
    if spec.init not in ("pretrained", "random"):
        raise ValueError(f"models.{spec.name}.init: unknown value {spec.init!r}")
    parts = components or resolve_components(spec)
    random = spec.init == "random"
    dtype = resolve_dtype(spec.dtype, device)
    speech = modality == "speech"

    beats_file = torch_load_safely(parts.beats)
    if not isinstance(beats_file, dict) or "cfg" not in beats_file or "model" not in beats_file:
        raise ValueError(f"{parts.beats}: not a BEATs checkpoint ({{'cfg', 'model'}} expected)")
    beats_config = BeatsConfig.from_dict(beats_file["cfg"])
    whisper_config = WhisperConfig.from_pretrained(parts.whisper)
    llm_config = LlamaConfig.from_pretrained(parts.llm)
    if llm_config.model_type != "llama":
        raise ValueError(f"{parts.llm}: a {llm_config.model_type!r} model, SALMONN needs llama")

    whisper = beats = extractor = None
    if speech:
        extractor = WhisperFeatureExtractor.from_pretrained(parts.whisper)
        if random:
            torch.manual_seed(spec.seed + 1)
            whisper = WhisperEncoder(whisper_config).to(dtype)
        else:
            whisper = _load_complete(WhisperModel, parts.whisper, dtype, "encoder.").encoder
        if random:
            torch.manual_seed(spec.seed + 2)
        beats = BeatsEncoder(beats_config)
        if not random:
            load_beats_state_dict(beats, beats_file["model"], parts.beats)
    del beats_file

    if random:
        torch.manual_seed(spec.seed)
        base = LlamaModel(llm_config).to(dtype)
    else:
        base = _load_complete(LlamaModel, parts.llm, dtype)
    llm = wrap_lora(base)

    qformer_config = Blip2QFormerConfig(
        **{**QFORMER_DEFAULTS, **(parts.options.get("qformer") or {})},
        encoder_hidden_size=whisper_config.d_model + beats_config.encoder_embed_dim,
        cross_attention_frequency=1,
        use_qformer_text_input=False,
    )
    torch.manual_seed(spec.seed + 3)
    model = SalmonnModel(
        whisper,
        beats,
        qformer_config,
        llm,
        whisper_dim=whisper_config.d_model,
        beats_dim=beats_config.encoder_embed_dim,
        feature_extractor=extractor,
    )
    if not random:
        state = read_salmonn_checkpoint(parts.checkpoint)
        load_salmonn_weights(model, map_official_state_dict(state), str(parts.checkpoint))
    tokenizer = AutoTokenizer.from_pretrained(parts.llm)
    return model.eval().to(device), tokenizer


def _load_complete(cls: type, path: str, dtype: torch.dtype, prefix: str = "") -> torch.nn.Module:
    """``cls.from_pretrained(path)``, refused when weights under ``prefix`` are missing.

    transformers would fill them with random values and only log it (its report, which
    also lists unused weights such as the lm_head, is silenced here).
    """
    with _quiet_transformers():
        model, info = cls.from_pretrained(path, dtype=dtype, output_loading_info=True)
    missing = [key for key in info["missing_keys"] if key.startswith(prefix)]
    if missing:
        raise ValueError(
            f"{path}: lacks {len(missing)} weights that {cls.__name__} needs "
            f"(e.g. {missing[:3]}); wrong folder, or saved from another class?"
        )
    return model


# --------------------------------------------------------------------------- the adapter
class SalmonnAdapter:
    """SALMONN behind the gapscope adapter protocol (see the module docstring)."""

    sampling_rate = SAMPLING_RATE

    def __init__(self, spec: ModelSpec, modality: str, device: torch.device | None = None):
        if modality not in ("text", "speech"):
            raise ValueError(f"unknown modality {modality!r}")
        self.spec = spec
        self.family = spec.adapter
        self.modality = modality
        self.device = device or default_device()
        self.components = resolve_components(spec)
        options = self.components.options
        self.model, self.tokenizer = load_model(spec, modality, self.device, self.components)
        self.all_windows = options.get("speech_windows", "real") == "all"
        template = options.get("template", PROMPT_TEMPLATE)
        prompt = template.replace(SPEECH_SLOT, "\0").format(options.get("prompt", ASR_PROMPT))
        left, right = prompt.split("\0")
        self.left_ids = self._ids(left)
        self.right_ids = self._ids(right)
        bos = self.tokenizer.bos_token_id
        if bos is None:
            raise ValueError(f"{self.components.llm}: the tokenizer has no BOS token")
        self.bos_id = bos
        # padded positions are masked; the tokenizer's own pad id may lie beyond the
        # embedding table (SALMONN's code adds a [PAD] token to Vicuna's tokenizer)
        self.pad_id = bos
        self.blocks = self.model.llm_base.layers
        self.n_layers = len(self.blocks)
        self.capture = TapCapture()  # the LLM's input embeddings and every block's output
        self.capture.input_of(self.blocks[0], "layer00")
        for i, block in enumerate(self.blocks, start=1):
            self.capture.output_of(block, f"layer{i:02d}")

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def taps(self, modality: str | None = None) -> list[str]:
        """LLM layers for both modalities; the Q-Former's input and output for speech."""
        layers = [f"layer{i:02d}" for i in range(self.n_layers + 1)]
        if (modality or self.modality) == "speech":
            return [*layers, "qformer_in", "qformer_out"]
        return layers

    def text_lengths(self, sentences: Sequence[str], language: str) -> list[int]:
        """Transcript tokens per sentence (the pooled positions; the prompt is fixed)."""
        return [len(self._ids(s)) for s in sentences]

    @torch.inference_mode()
    def encode(self, inputs: Sequence, language: str, modality: str | None = None) -> Pooled:
        """Pool every tap for one batch of transcripts (text) or waveforms (speech)."""
        modality = check_modality(self.modality, modality)
        self.capture.tensors.clear()
        if modality == "text":
            return self._encode_text(list(inputs))
        return self._encode_speech(list(inputs))

    def _embed(self, ids: list[int] | torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        return self.model.llm_base.embed_tokens(ids)

    def _run_llm(self, embeds: torch.Tensor, attention: torch.Tensor | None) -> None:
        self.model.llm_base(inputs_embeds=embeds, attention_mask=attention, use_cache=False)

    def _encode_text(self, sentences: list[str]) -> Pooled:
        contents = [self._ids(s) for s in sentences]
        head = [self.bos_id, *self.left_ids]
        rows = [head + ids + self.right_ids for ids in contents]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        content = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, (row, tokens) in enumerate(zip(rows, contents, strict=True)):
            ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = 1
            content[i, len(head) : len(head) + len(tokens)] = True
        self._run_llm(self._embed(ids), attention.to(self.device))
        return pool(dict(self.capture.tensors), dict.fromkeys(self.capture.tensors, content))

    def _encode_speech(self, waves: list[np.ndarray]) -> Pooled:
        waves = check_waves(waves, self.spec.name)
        features, frames = self.model.audio_features(waves)
        tokens = self.model.speech_tokens(features)
        batch, n_windows = tokens.shape[:2]
        windows = torch.tensor([real_windows(len(w)) for w in waves], device=self.device)
        if self.all_windows:
            frames = torch.full_like(frames, features.shape[1])
            windows = torch.full_like(windows, n_windows)
        llm_dtype = self.model.llm_base.embed_tokens.weight.dtype
        head = self._embed([self.bos_id, *self.left_ids]).unsqueeze(0).expand(batch, -1, -1)
        tail = self._embed(self.right_ids).unsqueeze(0).expand(batch, -1, -1)
        self._run_llm(torch.cat([head, tokens.to(llm_dtype), tail], dim=1), None)
        positions = torch.arange(head.shape[1] + n_windows + tail.shape[1], device=self.device)
        start = head.shape[1]
        content = (positions >= start) & (positions < start + windows.unsqueeze(1))
        window_mask = torch.arange(n_windows, device=self.device) < windows.unsqueeze(1)
        frame_mask = torch.arange(features.shape[1], device=self.device) < frames.unsqueeze(1)
        tensors = {**self.capture.tensors, "qformer_in": features, "qformer_out": tokens}
        masks = {tap: content for tap in self.capture.tensors}
        masks.update(qformer_in=frame_mask, qformer_out=window_mask)
        return pool(tensors, masks)
