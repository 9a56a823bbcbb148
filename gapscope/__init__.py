"""gapscope: modality and language gaps in multimodal foundation models."""

__version__ = "0.1.0"
