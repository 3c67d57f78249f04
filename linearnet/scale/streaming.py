"""Out-of-core exact linear regression: chunked passes, memory O(d^2) whatever the row count.

The file is read by the one table reader (:func:`~linearnet.data.tabular.read_chunks`: pandas' C
engine for CSV, pyarrow for Parquet, a memory map for ``.npy``), so a file is accepted or refused
exactly as in memory. Each training chunk is reduced to centred sufficient statistics
(:class:`~linearnet.models.closed_form.Moments`) and merged; when their condition number is too
high for the normal equations, a second pass builds a tall-skinny QR (TSQR) of the centred,
column-scaled data, which is as accurate as the in-memory QR solve. Validation rows are picked by
row index (:func:`~linearnet.data.split.is_val_row`) and scored from their own statistics,
gathered in the same pass (a further pass only for an almost perfect fit, where that would cancel).
Under torchrun the chunks are shared among the ranks and the statistics all-gathered.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..data.split import is_val_row
from ..data.tabular import Chunk, default_chunk_rows, read_chunks, read_header, select_columns, table_kind
from ..errors import DataError
from ..io import write_json
from ..models.closed_form import LeastSquaresSolution, Moments, accumulate, solve_moments, solve_triangular_factor
from ..persist import ModelFile, save_model
from ..progress import tqdm
from ..training.run import RunFolder, check_new_run_dir


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataError(f"{path}: not found; check the data path.")
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix in (".csv", ".parquet"))
    if not files:
        raise DataError(f"{path}: the folder holds no .csv or .parquet files.")
    return files


def iter_table_chunks(path: str | Path, target: str | None, features=None, chunk_rows: int | None = None,
                      rank: int = 0, world_size: int = 1, *, labels: bool = False, part: str = "all",
                      val_fraction: float = 0.0, order: torch.Generator | None = None,
                      start: tuple[int, int] = (0, 0), threaded: bool = True) -> tuple[list[str], Iterator[Chunk]]:
    """Feature names and this rank's :class:`~linearnet.data.tabular.Chunk` s of a file or folder.

    ``part`` keeps "all" rows, only the "train" rows or only the "val" rows of the split by row
    index with ``val_fraction``. ``labels=True`` returns the target as canonical string labels.
    A ``.npy`` file's last column is the target (``target`` may then be None). Chunk ``i`` belongs to
    rank ``i % world_size``; in a folder of several files each rank reads whole files, in an order
    drawn from ``order`` when given (streamed SGD shuffles the file order per epoch).
    Each chunk's ``position`` is (file, chunks of that file read so far), in this rank's file order;
    ``start`` continues after such a position, cutting the same chunks: earlier files are not opened,
    and the file's earlier chunks are not parsed (CSV, ``.npy``) or only decoded (Parquet).
    ``threaded`` as for :func:`~linearnet.data.tabular.read_chunks`.
    """
    path = Path(path)
    files = _files(path)
    npy = len(files) == 1 and table_kind(files[0]) == "npy"
    if target is None and not npy:
        raise DataError(f"{path}: a target column is required to train on this file; name it.")
    tgt = "y" if npy and target is None else target
    first_names = select_columns(files[0], read_header(files[0]), tgt, features) if not npy else None
    if npy:
        first_names = read_chunks(files[0], tgt, features, chunk_rows, labels=labels)[0]
    chunk_rows = chunk_rows or default_chunk_rows(len(first_names) + 1)
    many = len(files) > 1

    def every_chunk():
        mine = files[rank::world_size] if many else files
        if order is not None:
            mine = [mine[i] for i in torch.randperm(len(mine), generator=order).tolist()]
        for fi, f in enumerate(mine):
            if fi < start[0]:
                continue
            skip = start[1] if fi == start[0] else 0
            names, chunks = read_chunks(f, tgt, features, chunk_rows, labels=labels,
                                        rank=0 if many else rank, world_size=1 if many else world_size,
                                        skip_chunks=skip, threaded=threaded)
            if names != first_names:
                raise DataError(f"{f}: its columns {names} differ from {first_names} in {files[0]}; every file "
                                "of the folder needs the same columns.")
            for ci, c in enumerate(chunks, start=1 + skip):
                if part != "all" and val_fraction > 0:
                    keep = is_val_row(c.rows, val_fraction)
                    keep = keep if part == "val" else ~keep
                    if not keep.all():
                        c = Chunk(c.X[keep], None if c.y is None else c.y[keep], c.rows[keep],
                                  c.where.subset(keep), codes=None if c.codes is None else
                                  (c.codes[0][keep], c.codes[1]))
                elif part == "val":
                    continue
                if len(c.rows):
                    c.path, c.position = f, (fi, ci)
                    yield c

    return first_names, every_chunk()


def iter_chunks(path: str | Path, target: str | None, features=None, chunk_rows: int | None = None,
                rank: int = 0, world_size: int = 1, *, labels: bool = False, part: str = "all",
                val_fraction: float = 0.0) -> tuple[list[str], Iterator[tuple[torch.Tensor, object]]]:
    """Feature names and this rank's stream of ``(X, y)`` chunks: X float64 (n, d) tensors.

    ``y`` is a float64 (n, 1) tensor, or with ``labels=True`` a numpy array of str labels (numbers
    canonical: ``1`` and ``1.0`` are one label). See :func:`iter_table_chunks` for ``part`` and
    ``val_fraction``.
    """
    names, chunks = iter_table_chunks(path, target, features, chunk_rows, rank, world_size, labels=labels,
                                      part=part, val_fraction=val_fraction)
    # a chunk read zero-copy (pyarrow, a memory map) may be read-only: torch wants its own writable copy
    return names, ((torch.from_numpy(np.require(c.X, requirements="W")),
                    c.y if labels else torch.from_numpy(np.require(c.y, requirements="W")).reshape(-1, 1))
                   for c in chunks)


def _gather_r(R: torch.Tensor) -> torch.Tensor:
    """Stack every rank's triangular factor and reduce them to one (TSQR across ranks)."""
    from .distributed import rank_world

    if rank_world()[1] == 1:
        return R
    import torch.distributed as dist

    parts = [torch.empty_like(R) for _ in range(rank_world()[1])]
    dist.all_gather(parts, R.contiguous())
    return torch.linalg.qr(torch.cat(parts), mode="r").R


def solve_file(path: str | Path, target: str | None, features=None, chunk_rows: int | None = None,
               progress: bool = True, val_fraction: float = 0.0
               ) -> tuple[LeastSquaresSolution, list[str], int]:
    """Exact least squares over the training rows of a file or folder, streamed (and shared among ranks).

    Returns (solution, feature names, training rows). A second pass (TSQR) runs only when the
    normal equations are too ill-conditioned to give a QR-quality answer.
    """
    sol, names, n, _ = _solve(path, target, features, chunk_rows, progress, val_fraction)
    return sol, names, n


def _solve(path, target, features, chunk_rows, progress: bool, val_fraction: float):
    """The solve, plus the validation rows' statistics of ``[X, y]`` gathered in the same pass."""
    from .distributed import all_gather_moments, rank_world

    rank, world = rank_world()
    names, chunks = iter_table_chunks(path, target, features, chunk_rows, rank, world)
    d = len(names)
    train, val = None, None
    for c in tqdm(chunks, unit="chunk", disable=None if (progress and rank == 0) else True, desc="chunks"):
        is_val = is_val_row(c.rows, val_fraction) if val_fraction > 0 else np.zeros(len(c.rows), bool)
        X, y = torch.from_numpy(c.X), torch.from_numpy(c.y).reshape(-1, 1)
        if not is_val.all():
            keep = torch.from_numpy(~is_val)
            m = Moments.of(X[keep], y[keep])
            train = m if train is None else train.merge(m)
        if is_val.any():
            pick = torch.from_numpy(is_val)
            m = Moments.of(torch.cat([X[pick], y[pick]], dim=1), y[pick])
            val = m if val is None else val.merge(m)
    moments = all_gather_moments(train, d, 1)
    val = all_gather_moments(val, d + 1, 1) if val_fraction > 0 else None
    if moments.n <= d:
        raise DataError(f"{path}: {moments.n} training rows for {d} features; a linear model needs more rows "
                        "than features.")
    sol = solve_moments(moments, allow_fallback=True)
    if sol is None:  # ill-conditioned: a tall-skinny QR of the centred, scaled data in a second pass
        scale = moments.cxx.diagonal().clamp_min(0).sqrt()
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        R = torch.zeros(0, d + 1, dtype=torch.float64)
        for X, y in iter_chunks(path, target, features, chunk_rows, rank, world, part="train",
                                val_fraction=val_fraction)[1]:
            Z = torch.cat([(X - moments.mean_x) / scale, y - moments.mean_y], dim=1)
            R = torch.linalg.qr(torch.cat([R, Z]), mode="r").R
        R = _gather_r(R if len(R) else torch.zeros(1, d + 1, dtype=torch.float64))
        sol = solve_triangular_factor(R, scale, moments)
    return sol, names, moments.n, val


def _metrics_from_moments(val: Moments, sol: LeastSquaresSolution) -> dict | None:
    """Validation RMSE and R^2 from the statistics of ``[X, y]``; None when cancellation could spoil them."""
    if val.n == 0:
        return {"val_rows": 0}
    v = torch.cat([-sol.weight.reshape(-1), torch.ones(1, dtype=torch.float64)])
    sst = float(val.cxx[-1, -1])
    offset = float(val.mean_x @ v - sol.bias[0])
    sse = float(v @ val.cxx @ v) + val.n * offset ** 2
    size = float(v.abs() @ val.cxx.abs() @ v.abs()) + val.n * offset ** 2  # rounding error is ~1e-15 of this
    if not sse > 1e-6 * size:  # an almost perfect fit would lose digits to cancellation: score the rows
        return None
    return {"val_rows": val.n, "val_rmse": (sse / val.n) ** 0.5, "val_r2": 1 - sse / sst if sst > 0 else float("nan")}


def validation_metrics(path: str | Path, target: str | None, features, chunk_rows: int | None,
                       sol: LeastSquaresSolution, val_fraction: float) -> dict:
    """RMSE and R^2 of ``sol`` on the validation rows (a pass over the file, float64 throughout)."""
    _, chunks = iter_chunks(path, target, features, chunk_rows, part="val", val_fraction=val_fraction)
    sse, ys = 0.0, []
    for X, y in chunks:
        pred = X @ sol.weight.t() + sol.bias
        sse += float(((pred - y) ** 2).sum())
        ys.append((y, y))
    m = accumulate(ys)
    if m is None or m.n == 0:
        return {"val_rows": 0}
    sst = float(m.cxx[0, 0])
    return {"val_rows": m.n, "val_rmse": (sse / m.n) ** 0.5, "val_r2": 1 - sse / sst if sst > 0 else float("nan")}


def train_streaming(config: TrainConfig, run_dir: Path, overwrite: bool = False, log=print) -> dict:
    """``linearnet train linreg --impl closed-form --chunk-rows N``: solve and write a run folder."""
    check_new_run_dir(run_dir, overwrite)  # before a long pass, not after it
    start = time.perf_counter()
    val_fraction = config.resolved_val_fraction
    sol, names, rows, val_moments = _solve(config.data, config.target, config.features, config.chunk_rows,
                                           config.progress, val_fraction)
    seconds = time.perf_counter() - start
    from .distributed import rank_world

    if rank_world()[0] != 0:
        return {}
    val = {}
    if val_moments is not None:
        val = _metrics_from_moments(val_moments, sol) or validation_metrics(
            config.data, config.target, config.features, config.chunk_rows, sol, val_fraction)
    folder = RunFolder(run_dir)  # built in <run_dir>.partial (config.json first), then put in place
    staging = folder.open(config, None)
    metrics = {"rows": rows + val.get("val_rows", 0), "train_rows": rows, "method": sol.method,
               "condition_number": sol.condition,
               "train_seconds": seconds, **val}
    try:
        write_json(staging / "metrics.json", metrics)
        # float64 parameters: a bias of -1699997.25 (a timestamp feature) must not be rounded to float32
        save_model(staging / "model.safetensors", ModelFile("linreg", sol.weight.double(), sol.bias.double(),
                                                            {"impl": "closed-form", "feature_names": names,
                                                             "target": config.target}))
        folder.publish()
    except BaseException:
        folder.discard()
        raise
    if "val_rmse" in val:
        tail = f"validation RMSE {val['val_rmse']:.6g}, R^2 {val['val_r2']:.4f} on {val['val_rows']} rows"
    else:
        tail = "no validation split (val_fraction 0)" if val_fraction == 0 else "no validation rows"
    log(f"closed form over {rows} rows in chunks ({sol.method}), {seconds:.2f} s; {tail}; run folder: {run_dir}")
    return metrics
