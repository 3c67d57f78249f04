"""Minibatch iterators: the chapter's ``data_iter`` done right, its ``load_array``, and the fast path.

:class:`Batches` is what training uses: the data stays in one tensor, each epoch draws a fresh
permutation from its own seeded generator and gathers batches with ``index_select`` (far cheaper
than per-sample ``Dataset`` access), optionally transforming each batch when it is taken.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils import data


def data_iter(batch_size: int, features: torch.Tensor, labels: torch.Tensor,
              generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield shuffled minibatches ``(features[idx], labels[idx])``, every example exactly once.

    The chapter's iterator, with its bug fixed (it yielded ``features[batch_size]``): the last batch
    is shorter when ``len(features)`` is not a multiple of ``batch_size``; no example is dropped.
    """
    n = len(features)
    indices = torch.randperm(n, generator=generator)
    for i in range(0, n, batch_size):
        batch = indices[i:i + batch_size]
        yield features[batch], labels[batch]


def load_array(data_arrays: tuple[torch.Tensor, ...], batch_size: int, is_train: bool = True,
               generator: torch.Generator | None = None) -> data.DataLoader:
    """The framework path: ``TensorDataset`` + ``DataLoader``, shuffled when ``is_train``."""
    dataset = data.TensorDataset(*data_arrays)
    return data.DataLoader(dataset, batch_size, shuffle=is_train, generator=generator)


class Batches:
    """Iterable of ``(X, y)`` minibatches over in-memory tensors.

    Parameters
    ----------
    X : Tensor, shape (n, ...)
        Inputs, any dtype (Fashion-MNIST keeps ``uint8`` and converts per batch via ``transform``).
    y : Tensor, shape (n, ...)
        Targets.
    batch_size : int
        Global batch size. Under ``torch.distributed`` each of ``world_size`` ranks takes its
        share (``batch[rank::world_size]``) of every global batch.
    shuffle : bool
        Draw a new permutation each epoch from ``generator`` (seeded by ``seed``).
    transform : callable, optional
        Applied to each gathered ``X`` batch (type conversion, resize, normalization).
    drop_last : bool
        Skip a final batch shorter than ``batch_size``.
    device : str or torch.device
        Where batches are delivered; CUDA batches come from pinned memory, non-blocking.
    rows : Tensor of int64, optional
        The rows in the order they count (default: all, in storage order): batches behave exactly
        as over ``X[rows]``, ``y[rows]`` without that copy being made.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = False,
                 seed: int = 0, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 drop_last: bool = False, device: str | torch.device = "cpu", rank: int = 0,
                 world_size: int = 1, rows: torch.Tensor | None = None) -> None:
        if len(X) != len(y):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.X, self.y = X, y
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)
        self.transform = transform
        self.drop_last = drop_last
        self.device = torch.device(device)
        self.rank, self.world_size = rank, world_size
        self.rows = rows

    def __len__(self) -> int:
        n = len(self.X) if self.rows is None else len(self.rows)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch_indices(self) -> torch.Tensor:
        """The row order of the next epoch (advances the generator when shuffling)."""
        n = len(self.X) if self.rows is None else len(self.rows)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        return order if self.rows is None else self.rows[order]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.epoch_indices()
        n, bs = len(order), self.batch_size
        stop = n - n % bs if self.drop_last else n
        cuda = self.device.type == "cuda"
        for idx in order[:stop].split(bs):  # views, one call: cheaper than a slice per step
            if self.world_size > 1:
                idx = idx[self.rank::self.world_size]
            Xb, yb = self.X.index_select(0, idx), self.y.index_select(0, idx)
            if cuda:
                Xb = Xb.pin_memory().to(self.device, non_blocking=True)
                yb = yb.pin_memory().to(self.device, non_blocking=True)
            if self.transform is not None:
                Xb = self.transform(Xb)
            yield Xb, yb
