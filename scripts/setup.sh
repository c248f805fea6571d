#!/usr/bin/env bash
# Idempotent setup: .venv with torch==2.13.0 (CPU wheel) installed first, then r1lab (+ extras).
# Usage: bash scripts/setup.sh [EXTRAS]   e.g. EXTRAS=dev
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-}"
VENV="${R1LAB_VENV:-.venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  echo "[setup] installing torch==2.13.0 (CPU wheel) first"
  "$VENV/bin/pip" install -q torch==2.13.0
fi

# Debian packages the sandbox uses for namespace isolation (best effort; the sandbox says what it has).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! command -v bwrap >/dev/null 2>&1; then
  echo "[setup] installing bubblewrap"
  (apt-get update -qq && apt-get install -y -qq bubblewrap) >/dev/null 2>&1 || echo "[setup] could not install bubblewrap"
fi

spec="."; [ -n "$EXTRAS" ] && spec=".[$EXTRAS]"
stamp="$VENV/.r1lab-installed-$(echo "$spec" | tr -c 'a-z0-9' '_')"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "[setup] installing r1lab ($spec)"
  "$VENV/bin/pip" install -q -e "$spec"
  touch "$stamp"
fi
