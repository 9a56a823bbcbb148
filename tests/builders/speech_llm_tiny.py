"""Tiny, randomly initialised speech-LLM checkpoints of real architectures, built offline.

Like :mod:`gapscope.models.demo` for SeamlessM4T: a small config of the real architecture
(Qwen2-Audio, Voxtral, Audio Flamingo 3), a byte-level BPE tokenizer trained on the given
sentences with the special tokens the real checkpoint uses, the real feature extractor class
(Whisper log-mel, a 10 s window instead of 30 s) and ``save_pretrained`` for both, so that
``AutoConfig`` / ``AutoProcessor`` / the model class load the folder exactly as they load
``Qwen/Qwen2-Audio-7B-Instruct`` or ``mistralai/Voxtral-Mini-3B-2507``, with
``HF_HUB_OFFLINE=1``. The weights are random: numbers from these models say nothing about
trained ones.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

import torch

ARCHITECTURES = ("qwen2_audio", "voxtral", "audioflamingo3")

# The default audio window of the tiny models: 10 s -> 1000 mel frames -> 500 encoder
# positions (the real checkpoints: 30 s -> 3000 -> 1500), long enough for demo sentences.
TINY_WINDOW_S = 10

TINY_LLM = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=2048,
)

# The chat template of Qwen2.5-style checkpoints (user turn; no tools): where an AF3 repo keeps
# one in tokenizer_config.json only (string content), it is this one.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'audio' %}<sound>{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Audio Flamingo 3's processor template behaves differently: whatever the order of the
# turn, the audio comes first (once) and then all its text, concatenated. This template does
# the same (transformers' conversion script writes the checkpoint's own).
AF3_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}"
    "{% if message['content'] | selectattr('type', 'equalto', 'audio') | list %}<sound>{% endif %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Qwen2's pre-tokenisation pattern (contractions, letters, single digits, punctuation runs).
QWEN_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The first special tokens of Mistral's tekken vocabulary, by rank (Voxtral: [AUDIO] = 24).
TEKKEN_SPECIALS = {
    0: "<unk>",
    1: "<s>",
    2: "</s>",
    3: "[INST]",
    4: "[/INST]",
    11: "<pad>",
    24: "[AUDIO]",
    25: "[BEGIN_AUDIO]",
    34: "[TRANSCRIBE]",
}
TEKKEN_N_SPECIAL = 40


def _byte_level_bpe(sentences: Iterable[str], specials: list[str], vocab_size: int):
    """A byte-level BPE (GPT-2 byte alphabet) trained on ``sentences``; specials get ids 0..n-1."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(sentences), trainer)
    return bpe


def qwen2_tokenizer(sentences: Iterable[str], extra: list[str], vocab_size: int = 600):
    """A ``Qwen2Tokenizer`` trained on ``sentences`` with Qwen's chat and audio specials."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    bpe = _byte_level_bpe(sentences, ["<|endoftext|>"], vocab_size)
    model = json.loads(bpe.to_str())["model"]
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=[tuple(m) for m in model["merges"]])
    specials = ["<|im_start|>", "<|im_end|>", *extra]
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def tekken_like_tokenizer(sentences: Iterable[str], vocab_size: int = 600):
    """A byte-level BPE whose first ids are Mistral's tekken special tokens (as Voxtral's).

    Saved, it is rewritten as a ``tekken.json`` (:func:`write_tekken`), the file the real
    Voxtral checkpoints ship, so loading goes through transformers' own tekken reader.
    """
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    specials = [TEKKEN_SPECIALS.get(i, f"<SPECIAL_{i}>") for i in range(TEKKEN_N_SPECIAL)]
    bpe = _byte_level_bpe(sentences, specials, vocab_size)
    bpe.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )


def write_tekken(folder: Path) -> Path:
    """Replace a saved tekken-like ``tokenizer.json`` by the ``tekken.json`` Mistral ships.

    The file has the real format (mistral-common's ``Tekkenizer``: ``config`` with the
    pre-tokenisation pattern and vocabulary sizes, ``vocab`` as base64 byte strings by
    rank, ``special_tokens`` by rank, ``version``/``type``); without ``tokenizer.json``
    transformers reads it with its tekken converter (no mistral-common needed). The BPE
    merges are implied by the ranks, as in tiktoken.
    """
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    source = folder / "tokenizer.json"
    model = json.loads(source.read_text())["model"]
    to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    ranked = sorted((i, token) for token, i in model["vocab"].items() if i >= TEKKEN_N_SPECIAL)
    vocab = []
    for i, token in ranked:
        raw = bytes(to_byte[c] for c in token)
        vocab.append(
            {
                "rank": i - TEKKEN_N_SPECIAL,
                "token_bytes": base64.b64encode(raw).decode("ascii"),
                "token_str": raw.decode("utf-8", errors="replace"),
            }
        )
    tekken = {
        "config": {
            "pattern": QWEN_PATTERN,
            "num_vocab_tokens": len(vocab),
            "default_vocab_size": len(vocab) + TEKKEN_N_SPECIAL,
            "default_num_special_tokens": TEKKEN_N_SPECIAL,
            "version": "v7",
        },
        "vocab": vocab,
        "special_tokens": [
            {"rank": r, "token_str": TEKKEN_SPECIALS.get(r, f"<SPECIAL_{r}>"), "is_control": True}
            for r in range(TEKKEN_N_SPECIAL)
        ],
        "version": 1,
        "type": "Tekken",
    }
    path = folder / "tekken.json"
    path.write_text(json.dumps(tekken))
    source.unlink()
    return path


def _perturb_norms(model: torch.nn.Module) -> None:
    """Non-trivial LayerNorm/RMSNorm scales (and biases), as trained models have.

    Default init (weight 1, bias 0) would hide some padding leaks and tap mix-ups.
    """
    with torch.no_grad():
        for module in model.modules():
            weight = getattr(module, "weight", None)
            is_norm = isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith(
                "RMSNorm"
            )
            if not is_norm or not isinstance(weight, torch.Tensor):
                continue
            weight.add_(0.1 * torch.randn_like(weight))
            bias = getattr(module, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.add_(0.1 * torch.randn_like(bias))


def _whisper_features(n_mels: int, window_s: int):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=n_mels, chunk_length=window_s)


def _build(arch: str, sentences: list[str], window_s: int):
    """(config, processor) of the tiny ``arch`` whose audio window is ``window_s`` seconds."""
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3Processor,
        Qwen2AudioConfig,
        Qwen2AudioProcessor,
        VoxtralConfig,
        VoxtralProcessor,
    )

    if arch == "qwen2_audio":
        tok = qwen2_tokenizer(sentences, ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"])
        processor = Qwen2AudioProcessor(
            feature_extractor=_whisper_features(128, window_s), tokenizer=tok
        )
        config = Qwen2AudioConfig(
            audio_config=dict(
                model_type="qwen2_audio_encoder",
                d_model=32,
                encoder_layers=2,
                encoder_attention_heads=4,
                encoder_ffn_dim=64,
                num_mel_bins=128,
                max_source_positions=50 * window_s,
            ),
            text_config=dict(model_type="qwen2", vocab_size=len(tok), **TINY_LLM),
            audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"),
        )
    elif arch == "voxtral":
        tok = tekken_like_tokenizer(sentences)
        processor = VoxtralProcessor(
            feature_extractor=_whisper_features(128, window_s), tokenizer=tok
        )
        config = VoxtralConfig(
            audio_config=dict(
                model_type="voxtral_encoder",
                hidden_size=32,
                intermediate_size=128,  # 4 x hidden: the projector stacks 4 frames
                num_hidden_layers=2,
                num_attention_heads=4,
                num_mel_bins=128,
                max_source_positions=50 * window_s,
            ),
            text_config=dict(model_type="llama", vocab_size=len(tok), **TINY_LLM),
            audio_token_id=tok.convert_tokens_to_ids("[AUDIO]"),
        )
    elif arch == "audioflamingo3":
        tok = qwen2_tokenizer(sentences, ["<sound>"])
        processor = AudioFlamingo3Processor(
            feature_extractor=_whisper_features(128, window_s),
            tokenizer=tok,
            chat_template=AF3_CHAT_TEMPLATE,
        )
        config = AudioFlamingo3Config(
            audio_config=dict(
                model_type="audioflamingo3_encoder",
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_mel_bins=128,
                max_source_positions=50 * window_s,
            ),
            text_config=dict(model_type="qwen2", vocab_size=len(tok), **TINY_LLM),
            audio_token_id=tok.convert_tokens_to_ids("<sound>"),
        )
    else:
        raise ValueError(f"unknown tiny speech-LLM {arch!r}; known: {list(ARCHITECTURES)}")
    return config, processor


def build_speech_llm_tiny(
    arch: str,
    out_dir: str | Path,
    sentences: Iterable[str],
    *,
    seed: int = 0,
    window_s: int = TINY_WINDOW_S,
) -> Path:
    """Build, seed and save a tiny ``arch`` model (see :data:`ARCHITECTURES`) and processor.

    ``window_s`` is the audio encoder's window (Whisper's is 30 s; the encoder costs grow
    with it): Qwen2-Audio refuses longer utterances, Voxtral and AF3 cut them into windows.
    """
    from transformers import (
        AudioFlamingo3ForConditionalGeneration,
        Qwen2AudioForConditionalGeneration,
        VoxtralForConditionalGeneration,
    )

    classes = {
        "qwen2_audio": Qwen2AudioForConditionalGeneration,
        "voxtral": VoxtralForConditionalGeneration,
        "audioflamingo3": AudioFlamingo3ForConditionalGeneration,
    }
    if arch == "voxtral" and (50 * window_s) % 4:
        raise ValueError(f"Voxtral stacks 4 encoder frames: window_s must be even, got {window_s}")
    config, processor = _build(arch, list(sentences), int(window_s))
    torch.manual_seed(seed)
    model = classes[arch](config).eval()
    _perturb_norms(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    if arch == "voxtral":
        write_tekken(out_dir)
    return out_dir
