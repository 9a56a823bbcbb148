#!/usr/bin/env bash
# One-step install: espeak-ng (apt) + a Python 3.11 virtual environment in .venv with gapscope,
# Snakemake, the SLURM executor plugin and the test tools, pinned by constraints.txt.
#   TORCH_SPEC   torch requirement (default torch==2.13.0, the CPU wheel; on a GPU machine
#                use a CUDA build, e.g. TORCH_SPEC="torch==2.13.0" with the CUDA index)
#   PYTHON       interpreter used to create .venv (default python3.11)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if ! command -v espeak-ng >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq espeak-ng >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q "$TORCH_SPEC"
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test,slurm]"
.venv/bin/python -c "import gapscope, torch, transformers, zarr, snakemake; print('gapscope installed:', gapscope.__version__, 'torch', torch.__version__)"
