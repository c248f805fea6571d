#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py): on a machine with one CUDA GPU, PyTorch, transformers and
# PEFT (no vLLM, no network): the tiny R1-Zero demo on cuda in bf16, SFT steps, LoRA GRPO steps and
# a 1-rank nccl torchrun run; prints one JSON line of figures last. Uses the python that has torch
# (PYTHON, else .venv/bin/python when present, else python3); r1lab's src/ goes on PYTHONPATH.
# Usage: bash scripts/gpu_check.sh [--out DIR] [--steps N] [--only demo,sft,lora,nccl] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" scripts/gpu_check.py "$@"
