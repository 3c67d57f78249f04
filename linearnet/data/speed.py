"""Read-pass timings: our in-memory batches beside the per-sample Dataset + DataLoader path."""

from __future__ import annotations

import time
import warnings

from torch.utils import data

from . import fashion_mnist as fm


def time_pass(batches) -> float:
    """Seconds to take every batch of one pass (the data ready as float32 batches)."""
    start = time.perf_counter()
    for _X, _y in batches:
        pass
    return time.perf_counter() - start


def read_pass_times(ds: fm.FashionMNIST, batch_size: int = 256, workers: tuple[int, ...] = (0, 4)
                    ) -> dict[str, float]:
    """One pass over the training set: ours (best of 3) and the DataLoader path per worker count."""
    ours = fm.batches(ds, "train", batch_size, seed=0)
    out = {"linearnet batches": min(time_pass(ours) for _ in range(3))}
    for w in workers:
        loader = data.DataLoader(fm.FashionMNISTDataset(ds, "train"), batch_size, shuffle=True, num_workers=w)
        with warnings.catch_warnings():  # torch warns that 4 workers exceed 2 cores: that is the point
            warnings.simplefilter("ignore", UserWarning)
            out[f"Dataset + DataLoader ({w} workers)"] = time_pass(loader)
    return out
