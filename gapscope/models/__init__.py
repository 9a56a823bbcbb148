"""Model adapters: one small adapter per model family behind one protocol.

This module is torch-free so that the similarity and summary stages can ask how a family's
taps pair up without importing a deep-learning stack; :func:`load_adapter` imports lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gapscope.taps import is_layer


@dataclass(frozen=True)
class ModelSpec:
    """What a loader needs to know about one model (``models.<name>`` of the config; the
    workflow builds it from :class:`gapscope.identity.RunIdentity`). The defaults are the
    config schema's; ``dtype`` None is the family's official inference precision."""

    name: str
    adapter: str
    checkpoint: str
    revision: str | None = None
    init: str = "pretrained"
    dtype: str | None = None
    trust_remote_code: bool = False
    seed: int = 0
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dtype is None and self.adapter in FAMILIES:
            object.__setattr__(self, "dtype", FAMILIES[self.adapter].dtype)


@dataclass(frozen=True)
class Family:
    """Static facts about a model family, known without loading a model.

    ``language_column`` names, per modality, the column of the language table that holds
    the family's code for a language (empty cell = unsupported); ``None`` accepts every
    language. ``named_pairs`` are the (text tap, speech tap) pairs compared across
    modalities besides same-index layers; ``length_adaptation`` is the (before, after) pair
    of named pairs that shows the effect of length adaptation.

    Which cross-modal pairs live in *one* space (so that sentence-level retrieval between
    them means something): ``shared_layers`` says the text and speech ``layerNN`` are the
    same network's layers (a speech-LLM's LLM), ``shared_space`` names further (text tap,
    speech tap) pairs the model itself treats as one space (both feed the same decoder, or
    one is trained to match the other).
    """

    name: str
    language_column: dict[str, str | None]
    named_pairs: tuple[tuple[str, str], ...] = ()
    length_adaptation: tuple[tuple[str, str], tuple[str, str]] | None = None
    shared_layers: bool = False
    shared_space: tuple[tuple[str, str], ...] = ()
    dtype: str = "bfloat16"  # the official inference precision on a GPU (``dtype: null``)

    def one_space(self, text_tap: str, speech_tap: str) -> bool:
        """Whether a cross-modal tap pair lives in one representation space."""
        same_layer = text_tap == speech_tap and is_layer(text_tap)
        return (self.shared_layers and same_layer) or (text_tap, speech_tap) in self.shared_space

    def supports(self, language: str, modality: str) -> bool:
        """Whether the family has the language in that modality."""
        from gapscope import languages

        if modality not in self.language_column:
            return False
        column = self.language_column[modality]
        return column is None or getattr(languages.get(language), column) is not None


SEAMLESS_PAIRS = (("encoder_out", "pre_adaptor"), ("encoder_out", "post_adaptor"))
# SeamlessM4T: the text and speech encoders are different networks, so their layers share no
# space; the text encoder output and the speech encoder's adapted output are both what the
# one text decoder reads (cross-attention), so those two do.
FAMILIES: dict[str, Family] = {
    name: Family(
        name,
        {"text": "seamless", "speech": "seamless"},
        named_pairs=SEAMLESS_PAIRS,
        length_adaptation=SEAMLESS_PAIRS,
        shared_space=(("encoder_out", "post_adaptor"),),
        dtype="float16",  # Meta's Translator (seamless_communication) runs fp16 on a GPU
    )
    for name in ("seamless_m4t_v2", "seamless_m4t")
}
# Speech-LLMs: text token embeddings (layer00) against the audio encoder output before
# length adaptation and against the connector output the LLM receives (after it).
SPEECH_LLM_ADAPTATION = (("layer00", "encoder_out"), ("layer00", "projector_out"))
# One LLM reads both modalities: its layers are shared, and the projector writes into the
# LLM's input space, where the text token embeddings live.
FAMILIES["speech_llm"] = Family(
    "speech_llm",
    {"text": None, "speech": None},
    named_pairs=(*SPEECH_LLM_ADAPTATION, ("llm_out", "llm_out")),
    length_adaptation=SPEECH_LLM_ADAPTATION,
    shared_layers=True,
    shared_space=(("layer00", "projector_out"), ("llm_out", "llm_out")),
    dtype="bfloat16",  # the checkpoints are bf16, their model cards load them so
)
# SALMONN: the window-level Q-Former is the length adaptor. Text token embeddings (layer00)
# against its input (Whisper + BEATs features) and its projected output (the speech tokens
# the LLM reads, = speech layer00 at the pooled windows).
SALMONN_ADAPTATION = (("layer00", "qformer_in"), ("layer00", "qformer_out"))
FAMILIES["salmonn"] = Family(
    "salmonn",
    {"text": None, "speech": None},
    named_pairs=SALMONN_ADAPTATION,
    length_adaptation=SALMONN_ADAPTATION,
    shared_layers=True,
    shared_space=(("layer00", "qformer_out"),),
    dtype="float16",  # the official code runs the model under float16 autocast
)
# SONAR: the attention pooler is the length adaptation. The text sentence embedding against
# the speech encoder output the pooler reads (mean-pooled) and against the pooled speech
# embedding (paper 1b). Speech encoders exist for fewer languages than the text encoder.
SONAR_ADAPTATION = (("pooled", "pre_pooler"), ("pooled", "pooled"))
# SONAR's speech encoders are trained to map an utterance onto the text encoder's sentence
# embedding: the two ``pooled`` taps are one space (the one xsim is measured in).
FAMILIES["sonar"] = Family(
    "sonar",
    {"text": "sonar_text", "speech": "sonar_speech"},
    named_pairs=SONAR_ADAPTATION,
    length_adaptation=SONAR_ADAPTATION,
    shared_space=(("pooled", "pooled"),),
    dtype="float32",  # sonar-space's pipelines run float32
)


def family(adapter: str) -> Family:
    """The family registered under ``adapter``, or a clear error listing the known ones."""
    if adapter not in FAMILIES:
        raise ValueError(f"unknown adapter {adapter!r}; known: {sorted(FAMILIES)}")
    return FAMILIES[adapter]


def cross_modal_pairs(
    adapter: str, text_taps: Sequence[str], speech_taps: Sequence[str]
) -> list[tuple[str, str]]:
    """(text tap, speech tap) pairs compared across modalities.

    Layers meet the layer of the same index where both encoders have it; then the family's
    named pairs (e.g. the text encoder output against the speech side before and after the
    length adaptor) where both taps exist.
    """
    speech = set(speech_taps)
    pairs = [(t, t) for t in text_taps if is_layer(t) and t in speech]
    pairs += [(a, b) for a, b in family(adapter).named_pairs if a in text_taps and b in speech]
    return pairs


LOADERS: dict[str, str] = {
    "seamless_m4t_v2": "gapscope.models.seamless:SeamlessAdapter",
    "seamless_m4t": "gapscope.models.seamless:SeamlessAdapter",
    "speech_llm": "gapscope.models.speech_llm:SpeechLLMAdapter",
    "salmonn": "gapscope.models.salmonn:SalmonnAdapter",
    "sonar": "gapscope.models.sonar:SonarAdapter",  # runs in the SONAR environment only
}
"""Adapter name -> "module:class" of its loader (imported only when a model is loaded)."""


def load_adapter(spec: ModelSpec, modality: str, device=None):
    """Load the model of ``spec`` for one modality and return its adapter."""
    import importlib

    family(spec.adapter)
    if spec.adapter not in LOADERS:
        raise NotImplementedError(f"adapter {spec.adapter!r} has no loader yet")
    module, cls = LOADERS[spec.adapter].split(":")
    return getattr(importlib.import_module(module), cls)(spec, modality, device)
