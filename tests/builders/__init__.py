"""Builders of tiny, randomly initialised checkpoints of real architectures, for the tests
and the benchmarks only (not part of the installed package; the demo model the workflow
builds stays in :mod:`gapscope.models.demo`).

Import them with the repository root on ``sys.path``: ``from tests.builders.salmonn_tiny
import build_salmonn_tiny``. ``sonar_tiny`` needs the SONAR environment (fairseq2).
"""
