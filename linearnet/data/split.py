"""Reproducible train/validation split of row indices."""

from __future__ import annotations

import torch


def train_val_split(n: int, val_fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` into shuffled training and validation indices.

    The same ``(n, val_fraction, seed)`` always gives the same split. With ``val_fraction > 0``
    at least one row goes to each side when ``n >= 2``.

    Returns
    -------
    train_idx, val_idx : Tensor of int64
    """
    if not 0 <= val_fraction < 1:
        raise ValueError("val_fraction must be in [0, 1)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def is_val_row(rows, val_fraction: float):
    """Validation mask for data-row indices, decided by the index alone (for files read in chunks).

    Row ``r`` is a validation row when ``floor((r + 1) f) > floor(r f)``: an evenly spread
    ``val_fraction`` of the rows, the same whatever the chunking, the rank or the pass.
    """
    import numpy as np

    r = np.asarray(rows, dtype=np.float64)
    return np.floor((r + 1) * val_fraction) > np.floor(r * val_fraction)
