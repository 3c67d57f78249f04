"""The chapter's synthetic data set: ``y = X w + b + noise`` with standard-normal features."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def synthetic_regression(w: Sequence[float] | torch.Tensor, b: float, n: int, noise: float = 0.01,
                         seed: int | None = 0, generator: torch.Generator | None = None,
                         dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` examples of the chapter's linear model.

    Parameters
    ----------
    w : sequence of float, shape (d,)
        True weights.
    b : float
        True bias.
    n : int
        Number of examples.
    noise : float
        Standard deviation of the Gaussian label noise (the chapter uses 0.01).
    seed : int or None
        Seed of a private generator (ignored when ``generator`` is given); None uses torch's global RNG.
    generator : torch.Generator, optional
        Generator to draw from, for callers that manage their own random streams.

    Returns
    -------
    X : Tensor, shape (n, d)
    y : Tensor, shape (n, 1)
    """
    w = torch.as_tensor(w, dtype=dtype).reshape(-1)
    if generator is None and seed is not None:
        generator = torch.Generator().manual_seed(seed)
    X = torch.normal(0.0, 1.0, (n, len(w)), generator=generator, dtype=dtype)
    y = X @ w + b
    y += torch.normal(0.0, noise, y.shape, generator=generator, dtype=dtype) if noise > 0 else 0
    return X, y.reshape(-1, 1)
