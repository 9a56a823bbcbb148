#!/usr/bin/env bash
# Build the SONAR environment: its own virtual environment with sonar-space 0.5.0, fairseq2
# 0.5.2 and the exact torch they need (2.8.0), plus what gapscope's extraction needs
# (envs/sonar.txt), and gapscope itself (editable, --no-deps).
#
#   bash envs/install_sonar.sh [VENV]      VENV: default $SONAR_VENV, else .venv-sonar
#   PYTHON   interpreter that creates the venv (default python3.11)
#
# About 6.9 GB and 2-4 minutes from PyPI. Idempotent: when VENV/.gapscope-sonar.stamp holds
# the hash of envs/sonar.txt and the Python version, nothing is reinstalled (a changed
# requirements file rebuilds the venv from scratch); gapscope is re-linked only when the venv
# points at another checkout. Point the workflow at it with extract.sonar_python.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
VENV=${1:-${SONAR_VENV:-$ROOT/.venv-sonar}}
PYTHON=${PYTHON:-python3.11}
REQS=$ROOT/envs/sonar.txt
STAMP=$VENV/.gapscope-sonar.stamp
HASH=$({ cat "$REQS"; "$PYTHON" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && [ -x "$VENV/bin/python" ]; then
    echo "SONAR environment up to date: $VENV"
else
    if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
        echo "install_sonar.sh: $VENV exists but is not a virtual environment; not touching it" >&2
        exit 1
    fi
    echo "Building the SONAR environment in $VENV (about 6.9 GB) ..."
    start=$SECONDS
    "$PYTHON" -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install -qq --upgrade pip
    "$VENV/bin/python" -m pip install -qq -r "$REQS"
    echo "$HASH" >"$STAMP"
    echo "SONAR environment built in $((SECONDS - start)) s"
fi

linked=$(cd / && "$VENV/bin/python" -c \
    'import gapscope, pathlib; print(pathlib.Path(gapscope.__file__).resolve().parents[1])' \
    2>/dev/null || true)
if [ "$linked" != "$ROOT" ]; then
    "$VENV/bin/python" -m pip install -qq --no-deps -e "$ROOT"
fi
(cd / && "$VENV/bin/python" -c "import sonar, fairseq2, torch, gapscope.stages.extract; \
print('SONAR environment:', '$VENV', 'sonar', sonar.__version__, 'fairseq2', fairseq2.__version__, \
'torch', torch.__version__)")
