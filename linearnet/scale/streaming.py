"""Out-of-core exact linear regression: one chunked pass, memory O(d^2) whatever the row count.

Each chunk is reduced to centred sufficient statistics (:class:`~linearnet.models.closed_form.Moments`)
and merged, so the answer equals the in-memory solver's; CSV files are read by pandas' C engine in
chunks, ``.npy`` files through a memory map.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..errors import DataError
from ..io import write_json
from ..models.closed_form import accumulate, solve_moments
from ..persist import ModelFile, save_model
from ..training.run import create_run_dir


def iter_csv_chunks(path: Path, target: str, features: tuple[str, ...] | None, chunk_rows: int
                    ) -> tuple[list[str], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """Feature names and a stream of float64 ``(X, y)`` chunks from a CSV (pandas C engine)."""
    import pandas as pd

    header = list(pd.read_csv(path, nrows=0).columns)
    if target not in header:
        raise DataError(f"{path}: no target column {target!r}; pass the right --target.")
    names = list(features) if features else [c for c in header if c != target]
    missing = [c for c in names if c not in header]
    if missing:
        raise DataError(f"{path}: no feature column(s) {missing}; fix --features.")

    def chunks():
        reader = pd.read_csv(path, usecols=[*names, target], chunksize=chunk_rows, engine="c", dtype="float64")
        try:
            for frame in reader:
                arr = frame[[*names, target]].to_numpy(dtype=np.float64)
                if not np.isfinite(arr).all():
                    raise DataError(f"{path}: NaN or inf in a chunk; remove or impute those rows.")
                yield torch.from_numpy(arr[:, :-1]), torch.from_numpy(arr[:, -1:])
        except ValueError as exc:
            raise DataError(f"{path}: a value is not a number ({str(exc)[:80]}); features must be numeric.") from None

    return names, chunks()


def iter_npy_chunks(path: Path, chunk_rows: int) -> tuple[list[str], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """A 2-D ``.npy`` array whose last column is the target, memory-mapped and read in chunks."""
    arr = np.load(path, mmap_mode="r")
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise DataError(f"{path}: expected a 2-D array with features then the target as last column.")

    def chunks():
        for i in range(0, len(arr), chunk_rows):
            block = np.array(arr[i:i + chunk_rows], dtype=np.float64)
            yield torch.from_numpy(block[:, :-1]), torch.from_numpy(block[:, -1:])

    return [f"x{i}" for i in range(arr.shape[1] - 1)], chunks()


def solve_file(path: str | Path, target: str | None, features=None, chunk_rows: int = 100_000,
               progress: bool = True):
    """Exact least squares over a CSV or NPY file, streamed; returns (solution, feature names, rows)."""
    path = Path(path)
    if path.suffix == ".npy":
        names, chunks = iter_npy_chunks(path, chunk_rows)
    else:
        if target is None:
            raise DataError(f"--target is required with {path}.")
        names, chunks = iter_csv_chunks(path, target, features, chunk_rows)
    bar = tqdm(chunks, unit="chunk", disable=None if progress else True, desc="rows")
    moments = accumulate(bar)
    if moments is None or moments.n <= len(names):
        raise DataError(f"{path}: fewer rows than features; a linear model needs more rows than features.")
    return solve_moments(moments), names, moments.n


def train_streaming(config: TrainConfig, run_dir: Path, overwrite: bool = False, log=print) -> dict:
    """``linearnet train linreg --impl closed-form --chunk-rows N``: solve and write a run folder."""
    start = time.perf_counter()
    sol, names, rows = solve_file(config.data, config.target, config.features, config.chunk_rows or 100_000,
                                  config.progress)
    seconds = time.perf_counter() - start
    create_run_dir(run_dir, overwrite)
    write_json(run_dir / "config.json", config.to_dict())
    metrics = {"rows": rows, "method": sol.method, "condition_number": sol.condition, "train_seconds": seconds}
    write_json(run_dir / "metrics.json", metrics)
    save_model(run_dir / "model.safetensors", ModelFile("linreg", sol.weight.float(), sol.bias.float(),
                                                         {"impl": "closed-form", "feature_names": names,
                                                          "target": config.target}))
    log(f"closed form over {rows} rows in chunks ({sol.method}), {seconds:.2f} s; run folder: {run_dir}")
    return metrics
