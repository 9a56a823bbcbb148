"""Shared fixtures (a tiny SeamlessM4T v2 saved to disk) and the Snakemake runner of the
workflow tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SENTENCES = {
    "eng_Latn": ["The red bus is late again.", "We bought fresh bread.", "Rain fell all night."],
    "deu_Latn": ["Der rote Bus ist wieder spät.", "Wir kauften frisches Brot.", "Es regnete."],
    "zho_Hans": ["红色的公共汽车又晚了。", "我们买了新鲜的面包。", "下了一夜的雨。"],
}


@pytest.fixture(scope="session")
def tiny_seamless(tmp_path_factory):
    """Folder of a tiny random SeamlessM4T v2 saved with save_pretrained (model + processor)."""
    from gapscope import languages
    from gapscope.models.demo import build_seamless_tiny

    codes = [lang.seamless for lang in languages.load_table().values() if lang.seamless]
    texts = [s for group in SENTENCES.values() for s in group]
    return build_seamless_tiny(tmp_path_factory.mktemp("ckpt") / "v2", texts, codes, seed=0)


@pytest.fixture(scope="session")
def waves():
    """Three deterministic 'utterances' of different lengths (16 kHz float32)."""
    rng = np.random.default_rng(0)
    t = [np.arange(n) / 16000 for n in (24000, 9000, 16000)]
    return [
        (0.3 * np.sin(2 * np.pi * (150 + 50 * i) * x) + 0.02 * rng.standard_normal(x.size)).astype(
            np.float32
        )
        for i, x in enumerate(t)
    ]


def snakemake_command(workdir: Path, *args: str, configfile: Path | None = None) -> list[str]:
    """``python -m snakemake`` on the repository's Snakefile, run in ``workdir``.

    The config is ``workdir/config.yaml`` unless ``configfile`` names another.
    """
    config = configfile or workdir / "config.yaml"
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(config), *args,
    ]  # fmt: skip


def run_snakemake(
    workdir: Path, *args: str, timeout: float, configfile: Path | None = None
) -> subprocess.CompletedProcess:
    """Run :func:`snakemake_command` offline; return the finished process (output captured)."""
    return subprocess.run(
        snakemake_command(workdir, *args, configfile=configfile),
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=timeout,
    )
