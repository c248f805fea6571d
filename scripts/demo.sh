#!/usr/bin/env bash
# Set up (idempotent) and run the CPU demo: pretrain tiny base -> eval -> R1-Zero GRPO -> eval -> report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/r1lab demo "$@"
