"""Errors that name what is at fault, importable without the libraries that raise them.

``ConfigError``: a wrong config value, wherever it is found: before any job (the stage
layer's checks) or in a job (a corpus reader meeting a key that does not fit its data).
``StoreError``: a bad activation store; defined here, not in :mod:`gapscope.store`, so that
code that only reads what stores recorded (a similarity pair job) never imports Zarr."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value is wrong; the message names the key (``corpus.text_field: ...``)."""


class StoreError(ValueError):
    """A store is missing, incomplete, foreign or inconsistent; the message names it."""
