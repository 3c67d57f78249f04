"""Training: the one loop, checkpoints, data preparation and whole runs."""

from .loop import fit, run_epoch, scheduled_lr
from .run import RunResult, train_run

__all__ = ["fit", "run_epoch", "scheduled_lr", "RunResult", "train_run"]
