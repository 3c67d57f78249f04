"""Data-parallel helpers on ``torch.distributed`` (launched by torchrun): rank facts and exact least squares.

Exact least squares across ranks: each rank reduces its shard to centred sufficient statistics
(:class:`~linearnet.models.closed_form.Moments`, O(d^2) numbers), the statistics are all-gathered
and merged in rank order, so every rank solves the same normal equations as a single process would.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..models.closed_form import Moments, accumulate


def rank_world() -> tuple[int, int]:
    """(rank, world size) of the current process group, (0, 1) outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_gather_moments(local: Moments | None, d: int, k: int) -> Moments:
    """Merge every rank's statistics (a rank with no rows contributes n = 0)."""
    if local is None:
        local = Moments(0, torch.zeros(d, dtype=torch.float64), torch.zeros(k, dtype=torch.float64),
                        torch.zeros(d, d, dtype=torch.float64), torch.zeros(d, k, dtype=torch.float64))
    rank, world = rank_world()
    if world == 1:
        return local
    flat = local.to_tensor()
    parts = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(parts, flat)
    total = Moments.from_tensor(parts[0], d, k)
    for p in parts[1:]:
        total = total.merge(Moments.from_tensor(p, d, k))
    return total


def sharded_moments(X: torch.Tensor, y: torch.Tensor, chunk_rows: int = 65536) -> Moments:
    """Statistics of all rows of ``(X, y)``, each rank reducing its contiguous share, then all-gathered."""
    rank, world = rank_world()
    n = len(X)
    lo, hi = n * rank // world, n * (rank + 1) // world
    y2 = y.reshape(n, -1)
    local = accumulate((X[i:min(i + chunk_rows, hi)], y2[i:min(i + chunk_rows, hi)])
                       for i in range(lo, hi, chunk_rows))
    return all_gather_moments(local, X.shape[1], y2.shape[1])
