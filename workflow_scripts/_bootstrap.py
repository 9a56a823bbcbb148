"""Put the workflow folder first on sys.path so rule scripts import its gapscope library.

Snakemake adds only this scripts folder to a job's path; importing this module first makes
the library beside the Snakefile importable in any environment (a pip install, a conda env
from envs/, a cluster node) without setting PYTHONPATH.
"""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
