"""Glue of rules/extract.smk: what a model's config asks for (parameters, batch budget, the
SONAR environment, the demo checkpoints) and the job that turns one view into a store.

Light to import (rules/common.smk reads it when the workflow is parsed): torch, the adapters
and the store are imported by the job itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gapscope.errors import ConfigError
from gapscope.identity import POOLING, RunIdentity
from gapscope.models import LOADERS, ModelSpec, family, load_adapter
from gapscope.models.demo import DEMO_MODELS

if TYPE_CHECKING:
    import pandas as pd

DEMO_MODEL_ROOT = "resources/models"


def check_model(name: str, model: Mapping, codes: Sequence[str], modalities: Sequence[str]) -> None:
    """The adapter has a loader and supports every configured language and modality."""
    if model["adapter"] not in LOADERS:
        raise ConfigError(
            f"models.{name}.adapter: {model['adapter']!r} has no loader yet "
            f"(available: {', '.join(sorted(LOADERS))})"
        )
    facts = family(model["adapter"])
    for modality in modalities:
        unsupported = [code for code in codes if not facts.supports(code, modality)]
        if unsupported:
            raise ConfigError(
                f"models.{name}: {model['adapter']} has no {modality} support for "
                f"{', '.join(unsupported)}; remove them from `languages`, or list the "
                f"supported ones in models.{name}.languages"
            )


def is_demo_checkpoint(checkpoint: str) -> bool:
    """True when the checkpoint is a tiny model this workflow builds itself."""
    path = Path(checkpoint)
    return path.parent == Path(DEMO_MODEL_ROOT) and path.name in DEMO_MODELS


def run_identity(config: Mapping, model: str) -> RunIdentity:
    """What identifies one configured model's run, from the validated config (whose defaults
    are the schema's): ``dtype: null`` becomes the family's official inference precision."""
    spec = config["models"][model]
    return RunIdentity(
        model=model,
        adapter=spec["adapter"],
        checkpoint=spec["checkpoint"],
        revision=spec["revision"],
        init=spec["init"],
        dtype=spec["dtype"] or family(spec["adapter"]).dtype,
        seed=spec["seed"],
        trust_remote_code=spec["trust_remote_code"],
        options=dict(spec["options"] or {}),
        pooling=POOLING,
        recording=str(config["corpus"]["recording"]),
    )


def model_params(config: Mapping, model: str) -> dict:
    """The extraction rule's params: the run identity (a change reruns extraction)."""
    return run_identity(config, model).params()


def extract_budget(extract: Mapping, modality: str) -> int:
    """Padded batch size: tokens for text, 16 kHz samples for speech."""
    if modality == "text":
        return int(extract["batch_tokens"])
    return int(extract["batch_seconds"] * 16_000)


SONAR_ADAPTER = "sonar"


def sonar_models(config: Mapping) -> list[str]:
    """Models extracted in the SONAR environment (adapter ``sonar``), in config order."""
    return [name for name, m in config["models"].items() if m["adapter"] == SONAR_ADAPTER]


def models_regex(names: Sequence[str]) -> str:
    """A {model} wildcard regex matching exactly ``names`` (never matching when empty)."""
    return "|".join(names) or "(?!)"


def sonar_python(config: Mapping, basedir: str | Path) -> str:
    """The SONAR interpreter (``extract.sonar_python``).

    A path is relative to the workflow folder; a bare command name (``python``, e.g. inside
    the rule's conda environment under ``--sdm conda``) is looked up on PATH when the job runs.
    """
    value = str(config["extract"]["sonar_python"])
    if "/" not in value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else Path(basedir) / path)


def check_sonar_python(config: Mapping, basedir: str | Path) -> None:
    """With a SONAR model configured, the SONAR interpreter must exist (before any job runs)."""
    models = sonar_models(config)
    python = sonar_python(config, basedir)
    if models and "/" in python and not Path(python).exists():
        raise ConfigError(
            f"extract.sonar_python: {python} does not exist, but models {', '.join(models)} "
            "run in the SONAR environment; build it with `bash envs/install_sonar.sh` "
            "(or point extract.sonar_python at an existing one)"
        )


def run_view(
    *,
    manifest: pd.DataFrame,
    model: dict,
    language: str,
    modality: str,
    store: str,
    budget: int,
    chunk_size: int,
    device: str = "auto",
    threads: int = 1,
) -> dict:
    """Load the model of one view, extract every sentence and write the store.

    ``model`` is the run identity as the rule hands it over (:meth:`RunIdentity.params`).
    """
    import time

    import torch

    from gapscope.extract import extract_view
    from gapscope.models.base import default_device, single_threaded_blas
    from gapscope.store import ViewWriter, publish, staging_path

    torch.set_num_threads(max(1, int(threads)))
    single_threaded_blas()
    identity = RunIdentity.from_params(model)
    spec = ModelSpec(**identity.spec_fields())
    target = default_device() if device == "auto" else torch.device(device)
    started = time.perf_counter()
    adapter = load_adapter(spec, modality, target)
    loaded = time.perf_counter()
    attrs = identity.view_attrs(language, modality, adapter.taps(modality), str(target))
    ids = sorted(manifest["sentence_id"].unique())
    staging = staging_path(store)
    writer = ViewWriter(staging, ids, attrs, chunk_size=chunk_size, resume=True)
    stats = extract_view(
        adapter, manifest, writer, language=language, modality=modality, budget=budget
    )
    publish(staging, store)
    done = time.perf_counter()
    stats.update(
        load_seconds=loaded - started,
        extract_seconds=done - loaded,
        sentences_per_second=stats["computed_inputs"] / max(done - loaded, 1e-9),
        device=str(target),
    )
    return stats
