"""Tiny SONAR encoders of the real architectures, built offline as a folder of asset cards.

Runs in the SONAR environment (fairseq2 + sentencepiece). The folder mirrors sonar-space's
own cards: ``text_sonar_basic_encoder`` (family ``transformer_encoder``, arch ``basic``) with
an NLLB tokenizer (a small SentencePiece model trained on the given sentences; fairseq2 adds
the ``__xxx_Xxxx__`` language symbols and ``<pad>`` when it loads it), and per-language
``sonar_speech_encoder_<code>`` cards whose ``base`` is ``sonar_speech_encoder_base``
(``english`` arch for ``eng``, ``non_english`` otherwise, as in sonar-space). Each card keeps
the real architecture and only shrinks sizes through ``model_config_override``; the weights
are random (seeded) and saved as plain state dicts, which fairseq2 loads with
``weights_only=True``. Point a model's ``checkpoint`` at the folder to load them through the
same code path as the real checkpoints. Numbers computed from them mean nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

TEXT_OVERRIDE = {
    "model_dim": 32,
    "num_encoder_layers": 3,
    "num_encoder_attn_heads": 4,
    "ffn_inner_dim": 64,
}
SPEECH_OVERRIDE = {
    "w2v2_encoder_config": {
        "model_dim": 32,
        "num_encoder_layers": 2,
        "num_encoder_attn_heads": 4,
        "ffn_inner_dim": 64,
    },
    "model_dim": 32,
    "num_decoder_layers": 2,
    "num_decoder_attn_heads": 4,
    "ffn_inner_dim": 64,
}
ENGLISH_OVERRIDE = {"num_decoder_layers": 1}  # english arch: fewer pooler layers, as in SONAR


def train_sentencepiece(sentences: Iterable[str], prefix: Path, vocab_size: int = 120) -> Path:
    """A unigram SentencePiece model with NLLB's ids (unk 0, bos 1, eos 2, no pad)."""
    import sentencepiece as spm

    corpus = prefix.with_suffix(".txt")
    corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
    )
    corpus.unlink()
    return prefix.with_suffix(".model")


def build_tiny_sonar(
    root: str | Path,
    sentences: Sequence[str],
    text_langs: Sequence[str],
    speech_langs: Sequence[str],
    *,
    seed: int = 0,
) -> Path:
    """Write tiny SONAR cards + checkpoints under ``root`` and return ``root``.

    ``text_langs`` are FLORES codes for the tokenizer, ``speech_langs`` SONAR speech codes
    (``eng``, ``deu``) that get an encoder each (seed ``seed + i``).
    """
    import sentencepiece as spm
    import torch
    import yaml

    from gapscope.models import ModelSpec
    from gapscope.models.sonar import SPEECH_FAMILY, TEXT_FAMILY, Cards, require_fairseq2

    require_fairseq2()
    # sonar-space's public hub accessors (what gapscope.models.sonar's private _hub returns)
    from sonar.models.sonar_speech import get_sonar_speech_encoder_hub
    from sonar.models.sonar_text import get_sonar_text_encoder_hub

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    model = train_sentencepiece(sentences, root / "sentencepiece")
    langs = list(dict.fromkeys(text_langs))
    # fairseq2's NLLB loader adds one symbol per language, 3 data tags and <pad>.
    vocab = spm.SentencePieceProcessor(model_file=str(model)).get_piece_size() + len(langs) + 4
    cards = [
        {
            "name": "text_sonar_basic_encoder",
            "model_family": TEXT_FAMILY,
            "model_arch": "basic",
            "model_config_override": {
                **TEXT_OVERRIDE,
                "vocab_info": {
                    "size": vocab,
                    "unk_idx": 1,
                    "bos_idx": 2,
                    "eos_idx": 3,
                    "pad_idx": 1,
                },
            },
            "checkpoint": "text_encoder.pt",
            "tokenizer": model.name,
            "tokenizer_family": "nllb",
            "tokenizer_config": {"_set_": {"default_lang": langs[0], "langs": langs}},
        },
        {
            "name": "sonar_speech_encoder_base",
            "model_family": SPEECH_FAMILY,
            "model_arch": "non_english",
            "model_config_override": SPEECH_OVERRIDE,
        },
    ]
    for code in speech_langs:
        card = {
            "name": f"sonar_speech_encoder_{code}",
            "base": "sonar_speech_encoder_base",
            "checkpoint": f"speech_encoder_{code}.pt",
        }
        if code == "eng":
            card |= {"model_arch": "english", "model_config_override": ENGLISH_OVERRIDE}
        cards.append(card)
    (root / "cards.yaml").write_text(yaml.safe_dump_all(cards, sort_keys=False), encoding="utf-8")

    resolver = Cards(ModelSpec(name="tiny_sonar", adapter="sonar", checkpoint=str(root)))
    hubs = {
        TEXT_FAMILY: get_sonar_text_encoder_hub(),
        SPEECH_FAMILY: get_sonar_speech_encoder_hub(),
    }
    names = [("text_sonar_basic_encoder", TEXT_FAMILY, "text_encoder.pt")]
    names += [
        (f"sonar_speech_encoder_{c}", SPEECH_FAMILY, f"speech_encoder_{c}.pt") for c in speech_langs
    ]
    for i, (name, family, filename) in enumerate(names):
        hub = hubs[family]
        torch.manual_seed(seed + i)
        encoder = hub.create_new_model(hub.get_model_config(resolver.get(name, family)))
        torch.save(encoder.state_dict(), root / filename)
    return root
