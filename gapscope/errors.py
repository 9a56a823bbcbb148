"""The error a wrong config value raises, wherever it is found: before any job (the stage
layer's checks) or in a job (a corpus reader meeting a key that does not fit its data)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value is wrong; the message names the key (``corpus.text_field: ...``)."""
