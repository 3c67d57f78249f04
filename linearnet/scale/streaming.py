"""Out-of-core exact linear regression: one chunked pass, memory O(d^2) whatever the row count.

Each chunk is reduced to centred sufficient statistics (:class:`~linearnet.models.closed_form.Moments`)
and merged, so the answer equals the in-memory solver's; CSV files are read by pandas' C engine in
chunks, Parquet by pyarrow, ``.npy`` files through a memory map. Under torchrun the chunks are shared
among the ranks and the statistics all-gathered.
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
from ..training.run import RunFolder, check_new_run_dir


def _columns(header: list[str], path: Path, target: str | None, features) -> list[str]:
    if target is None:
        raise DataError(f"--target is required with {path}.")
    if target not in header:
        raise DataError(f"{path}: no target column {target!r}; pass the right --target.")
    names = list(features) if features else [c for c in header if c != target]
    missing = [c for c in names if c not in header]
    if missing:
        raise DataError(f"{path}: no feature column(s) {missing}; fix --features.")
    return names


def _to_tensors(arr: np.ndarray, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: NaN or inf in the data; remove or impute those rows.")
    return torch.from_numpy(arr[:, :-1]), torch.from_numpy(arr[:, -1:])


def _csv_chunks(path: Path, names: list[str], target: str, chunk_rows: int):
    import pandas as pd

    try:
        reader = pd.read_csv(path, usecols=[*names, target], chunksize=chunk_rows, engine="c", dtype="float64")
        for frame in reader:
            yield _to_tensors(frame[[*names, target]].to_numpy(dtype=np.float64), path)
    except ValueError as exc:
        raise DataError(f"{path}: a value is not a number ({str(exc)[:80]}); features must be numeric.") from None


def _parquet_chunks(path: Path, names: list[str], target: str, chunk_rows: int):
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=[*names, target]):
        cols = [batch.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in [*names, target]]
        yield _to_tensors(np.column_stack(cols), path)


def _header(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    import pandas as pd

    return list(pd.read_csv(path, nrows=0).columns)


def default_chunk_rows(num_features: int) -> int:
    """About 16 MB of float64 per chunk: big enough for fast BLAS, small enough to keep memory flat."""
    return max(1024, 2_000_000 // (num_features + 1))


def iter_chunks(path: str | Path, target: str | None, features=None, chunk_rows: int | None = None,
                rank: int = 0, world_size: int = 1) -> tuple[list[str], Iterator[tuple[torch.Tensor, torch.Tensor]]]:
    """Feature names and this rank's stream of float64 ``(X, y)`` chunks.

    ``path`` is a CSV or Parquet file (named columns, ``target`` required), a 2-D ``.npy`` array
    (features then the target as last column, memory-mapped), or a folder of CSV/Parquet files.
    Chunk ``i`` belongs to rank ``i % world_size``; a rank skips the others' ``.npy`` chunks and
    whole files of a folder without reading them.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: not found; check the --data path.")
    if path.suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        if arr.ndim != 2 or arr.shape[1] < 2:
            raise DataError(f"{path}: expected a 2-D array with features then the target as last column.")
        chunk_rows = chunk_rows or default_chunk_rows(arr.shape[1] - 1)
        starts = range(rank * chunk_rows, len(arr), world_size * chunk_rows)
        chunks = (_to_tensors(np.array(arr[i:i + chunk_rows], dtype=np.float64), path) for i in starts)
        return [f"x{i}" for i in range(arr.shape[1] - 1)], chunks
    files = (sorted(p for p in path.iterdir() if p.suffix in (".csv", ".parquet")) if path.is_dir() else [path])
    if not files:
        raise DataError(f"{path}: the folder holds no .csv or .parquet files.")
    names = _columns(_header(files[0]), files[0], target, features)
    chunk_rows = chunk_rows or default_chunk_rows(len(names))

    def every_chunk():
        for f in (files[rank::world_size] if len(files) > 1 else files):
            reader = _parquet_chunks if f.suffix == ".parquet" else _csv_chunks
            yield from reader(f, names, target, chunk_rows)

    if len(files) > 1:
        return names, every_chunk()
    return names, (c for i, c in enumerate(every_chunk()) if i % world_size == rank)


def solve_file(path: str | Path, target: str | None, features=None, chunk_rows: int | None = None,
               progress: bool = True):
    """Exact least squares over a file or folder, streamed (and shared among torchrun ranks).

    Returns (solution, feature names, rows).
    """
    from .distributed import all_gather_moments, rank_world

    rank, world = rank_world()
    names, chunks = iter_chunks(path, target, features, chunk_rows, rank, world)
    bar = tqdm(chunks, unit="chunk", disable=None if (progress and rank == 0) else True, desc="chunks")
    moments = all_gather_moments(accumulate(bar), len(names), 1)
    if moments.n <= len(names):
        raise DataError(f"{path}: fewer rows than features; a linear model needs more rows than features.")
    return solve_moments(moments), names, moments.n


def train_streaming(config: TrainConfig, run_dir: Path, overwrite: bool = False, log=print) -> dict:
    """``linearnet train linreg --impl closed-form --chunk-rows N``: solve and write a run folder."""
    check_new_run_dir(run_dir, overwrite)  # before a long pass, not after it
    start = time.perf_counter()
    sol, names, rows = solve_file(config.data, config.target, config.features, config.chunk_rows,
                                  config.progress)
    seconds = time.perf_counter() - start
    from .distributed import rank_world

    if rank_world()[0] != 0:
        return {}
    folder = RunFolder(run_dir)  # built in <run_dir>.partial (config.json first), then put in place
    staging = folder.open(config, None)
    metrics = {"rows": rows, "method": sol.method, "condition_number": sol.condition, "train_seconds": seconds}
    try:
        write_json(staging / "metrics.json", metrics)
        save_model(staging / "model.safetensors", ModelFile("linreg", sol.weight.float(), sol.bias.float(),
                                                            {"impl": "closed-form", "feature_names": names,
                                                             "target": config.target}))
        folder.publish()
    except Exception:
        folder.discard()
        raise
    log(f"closed form over {rows} rows in chunks ({sol.method}), {seconds:.2f} s; run folder: {run_dir}")
    return metrics
