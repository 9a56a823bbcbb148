"""What identifies a model run and a view: the one typed definition.

The config reader (:func:`gapscope.stages.extract.run_identity`) builds a :class:`RunIdentity`
from the validated config, whose defaults are the schema's; the extraction job receives it
as its rule's params (:meth:`RunIdentity.params`, a change reruns the job), loads the model
from it (:meth:`RunIdentity.spec_fields`) and writes it into the store
(:meth:`RunIdentity.view_attrs`); the store requires :data:`REQUIRED_FIELDS`; the similarity
stage compares two views only when their stores agree on :data:`STORED_FIELDS` (on those
recorded by both).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

POOLING = "masked_mean"
"""How a tap's positions become one vector per sentence (the only pooling gapscope has)."""


SPEC_KEYS = ("name", "adapter", "checkpoint", "revision", "init", "dtype", "trust_remote_code",
             "seed", "options")  # fmt: skip
"""The params a model loader needs (:class:`gapscope.models.ModelSpec`'s fields)."""


@dataclass(frozen=True)
class RunIdentity:
    """Every setting that can change a model's activations.

    ``dtype`` is resolved: the family's official inference precision where the config says
    null. ``trust_remote_code`` changes which code loads the checkpoint, not the numbers of a
    given code, so stores do not record it.
    """

    model: str
    adapter: str
    checkpoint: str
    revision: str | None
    init: str
    dtype: str
    seed: int
    trust_remote_code: bool
    options: Mapping[str, Any] = field(hash=False)
    pooling: str
    recording: str

    def params(self) -> dict[str, Any]:
        """The extraction rule's params (JSON-able; the model's name under ``name``)."""
        return {
            "name": self.model,
            "adapter": self.adapter,
            "checkpoint": self.checkpoint,
            "revision": self.revision,
            "init": self.init,
            "dtype": self.dtype,
            "seed": self.seed,
            "trust_remote_code": self.trust_remote_code,
            "options": dict(self.options),
            "pooling": self.pooling,
            "recording": self.recording,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> RunIdentity:
        """Inverse of :meth:`params`; a missing key is named."""
        keys = ["name", *(f.name for f in fields(cls) if f.name != "model")]
        missing = [key for key in keys if key not in params]
        if missing:
            raise KeyError(f"model params lack {', '.join(missing)}")
        values = {key: params[key] for key in keys if key != "name"}
        return cls(model=params["name"], **{**values, "options": dict(params["options"] or {})})

    def spec_fields(self) -> dict[str, Any]:
        """Keyword arguments of :class:`gapscope.models.ModelSpec` (what a loader needs)."""
        params = self.params()
        return {key: params[key] for key in SPEC_KEYS}

    def view_attrs(self, language: str, modality: str, taps: list[str], device: str) -> dict:
        """The attributes of one view's store (this order is the stores' since format 1)."""
        return {
            "adapter": self.adapter,
            "checkpoint": self.checkpoint,
            "revision": self.revision,
            "init": self.init,
            "dtype": self.dtype,
            "model": self.model,
            "language": language,
            "modality": modality,
            "pooling": self.pooling,
            "recording": self.recording,
            "options": dict(self.options),
            "seed": self.seed,
            "taps": list(taps),
            "device": device,
        }


STORED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(RunIdentity) if f.name != "trust_remote_code"
)
"""The run fields a store records; two views of one run agree on all of them."""

REQUIRED_FIELDS: tuple[str, ...] = (
    "model", "adapter", "checkpoint", "revision", "init", "dtype", "pooling",
)  # fmt: skip
"""The run fields every store has had since store format 1. The others came later: two views
are compared on such a field only where both stores record it."""

VIEW_FIELDS: tuple[str, ...] = ("language", "modality", "taps")
"""What a store records beside its run: which view it is and its taps."""
