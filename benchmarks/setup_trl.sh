#!/usr/bin/env bash
# Idempotent: benchmarks/.venv-trl, the TRL baseline's own environment (TRL is never a dependency
# of r1lab). torch==2.13.0 goes in FIRST (a plain "torch" requirement would pull a multi-GB CUDA
# build), then trl==1.16.0 under a constraints file that pins torch, so nothing upgrades it.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-trl
PY="${PYTHON:-python3}"
stamp="$VENV/.trl-1.16.0-torch-2.13.0"
[ -f "$stamp" ] && exit 0
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup_trl] creating benchmarks/$VENV"
  "$PY" -m venv "$VENV"
fi
constraints="$VENV/constraints.txt"
echo "torch==2.13.0" >"$constraints"
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "[setup_trl] installing torch==2.13.0 (CPU wheel) first"
  "$VENV/bin/pip" install -q torch==2.13.0
fi
echo "[setup_trl] installing trl==1.16.0"
PIP_CONSTRAINT="$constraints" "$VENV/bin/pip" install -q trl==1.16.0
"$VENV/bin/python" - <<'PY'
import sys

import torch
import trl

ok = torch.__version__.startswith("2.13.0") and trl.__version__ == "1.16.0"
print(f"[setup_trl] torch {torch.__version__}, trl {trl.__version__}")
sys.exit(0 if ok else 1)
PY
touch "$stamp"
