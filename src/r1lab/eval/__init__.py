"""Evaluation with the R1 protocol: metrics (pure), the runner, benchmarks, analytics, reports.

Import the submodules directly (``from r1lab.eval.runner import evaluate``); this package
imports nothing heavy at import time.
"""
