"""The run doctor: per-step checks of an RL run that warn, and stop with a reason when training
cannot learn (zero-variance groups, truncation, empty masks, reward errors, NaN/inf steps,
importance-ratio explosions, KL blow-up, entropy collapse). Pure Python: no torch.
"""

from r1lab.doctor.checks import CHECKS, Check, Finding
from r1lab.doctor.config import DoctorConfig
from r1lab.doctor.doctor import RunDoctor, TrainingStopped
from r1lab.doctor.report import DoctorReport, ReportEntry

__all__ = [
    "CHECKS",
    "Check",
    "DoctorConfig",
    "DoctorReport",
    "Finding",
    "ReportEntry",
    "RunDoctor",
    "TrainingStopped",
]
