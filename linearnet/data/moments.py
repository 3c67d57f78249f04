"""Running per-column statistics that merge: standardization from a stream of chunks or ``partial_fit`` calls."""

from __future__ import annotations

import numpy as np
import torch

from .tabular import Standardizer


class ColumnMoments:
    """Running per-column count, mean and sum of squared deviations (float64), mergeable (Chan et al.)."""

    def __init__(self, d: int) -> None:
        self.n, self.mean, self.m2 = 0, np.zeros(d), np.zeros(d)

    def add(self, X: np.ndarray) -> None:
        """Fold in the rows of ``X`` (n, d)."""
        if len(X):
            self.merge(len(X), X.mean(0), ((X - X.mean(0)) ** 2).sum(0))

    def merge(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        total = self.n + n
        if n == 0:
            return
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta ** 2 * (self.n * n / total)
        self.n = total

    def standardizer(self) -> Standardizer:
        """Mean and std with :func:`~linearnet.data.tabular.column_stats`' constant-column rule (std 1)."""
        std = np.sqrt(self.m2 / max(self.n, 1))
        constant = ~(std > 4 * np.finfo(np.float64).eps * np.abs(self.mean)) | ~np.isfinite(std)
        return Standardizer(torch.from_numpy(self.mean.copy()), torch.from_numpy(np.where(constant, 1.0, std)))

    def to_tensor(self) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([[float(self.n)], self.mean, self.m2]))
