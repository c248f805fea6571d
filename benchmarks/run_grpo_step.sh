#!/usr/bin/env bash
# One command from a fresh clone: r1lab's .venv (scripts/setup.sh), TRL's own benchmarks/.venv-trl
# (setup_trl.sh, called by grpo_step.py), then the alternating r1lab-vs-TRL GRPO step benchmark.
# Arguments go to grpo_step.py, e.g. `bash benchmarks/run_grpo_step.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python benchmarks/grpo_step.py "$@"
