"""Read-pass timings: our in-memory batches beside the per-sample ``Dataset`` + ``DataLoader`` paths.

:class:`ChapterStyleDataset` reproduces what the chapter's Fashion-MNIST dataset class with its
``ToTensor`` transform does per item (a PIL image, then a float tensor), using only PIL and torch, so
the comparison is against the book's real way of reading the data.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import torch
from torch.utils import data

from . import fashion_mnist as fm


class ChapterStyleDataset(data.Dataset):
    """Per item: uint8 array -> ``PIL.Image`` (mode L) -> ``(1, 28, 28)`` float32 / 255, int label."""

    def __init__(self, ds: fm.FashionMNIST, split: str = "train") -> None:
        self.X, self.y = ds.split(split)

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        img = Image.fromarray(self.X[i].numpy(), mode="L")
        t = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).view(1, *img.size[::-1])
        return t.to(torch.float32).div(255), int(self.y[i])


class EpochOrder(data.Sampler):
    """The permutations ``Batches(seed=...)`` draws, so a DataLoader sees the same batches as ours."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def time_pass(batches) -> float:
    """Seconds to take every batch of one pass (the data ready as float32 batches)."""
    start = time.perf_counter()
    for _X, _y in batches:
        pass
    return time.perf_counter() - start


def chapter_loader(ds: fm.FashionMNIST, split: str, batch_size: int, workers: int = 0,
                   seed: int | None = 0) -> data.DataLoader:
    """The chapter's pipeline: per-sample PIL decoding in a DataLoader (same order as ours when seeded)."""
    dataset = ChapterStyleDataset(ds, split)
    sampler = EpochOrder(len(dataset), seed) if seed is not None else None
    return data.DataLoader(dataset, batch_size, sampler=sampler, num_workers=workers,
                           persistent_workers=workers > 0)


def read_pass_times(ds: fm.FashionMNIST, batch_size: int = 256, workers: tuple[int, ...] = (0, 4)
                    ) -> dict[str, float]:
    """One pass over the training set: ours (best of 3) and the chapter's path per worker count."""
    ours = fm.batches(ds, "train", batch_size, seed=0)
    out = {"linearnet batches": min(time_pass(ours) for _ in range(3))}
    for w in workers:
        with warnings.catch_warnings():  # torch warns that 4 workers exceed 2 cores: that is the point
            warnings.simplefilter("ignore", UserWarning)
            out[f"per-sample PIL Dataset + DataLoader ({w} workers)"] = time_pass(
                chapter_loader(ds, "train", batch_size, w))
    return out
