"""The chapter's information theory as code: entropy, surprisal and cross-entropy of distributions."""

from __future__ import annotations

import torch


def _xlogy(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x * log(y)`` with the convention ``0 * log 0 = 0``."""
    return torch.xlogy(x, y)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy ``H[P] = -sum_j P(j) log P(j)`` in nats, over the last axis."""
    return -_xlogy(p, p).sum(-1)


def surprisal(p: torch.Tensor) -> torch.Tensor:
    """Surprisal ``-log P(j)`` of each outcome (infinite for an impossible one)."""
    return -torch.log(p)


def distribution_cross_entropy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ``H(P, Q) = -sum_j P(j) log Q(j)`` over the last axis; equals H[P] when Q = P."""
    return -_xlogy(p, q).sum(-1)
