"""Streaming exact least squares equals the in-memory solver."""

from __future__ import annotations

import numpy as np
import torch

from linearnet import least_squares
from linearnet.persist import load_model
from linearnet.scale.streaming import solve_file


def test_streamed_csv_and_npy_match_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 200_000, 5
    X = rng.normal(size=(n, d)) * [1, 10, 100, 0.1, 5] + [0, 1000, -50, 3, 0]
    y = X @ rng.normal(size=d) + 7 + rng.normal(0, 0.5, n)
    ref = least_squares(torch.from_numpy(X), torch.from_numpy(y))
    npy = tmp_path / "big.npy"
    np.save(npy, np.hstack([X, y[:, None]]))
    sol, names, rows = solve_file(npy, None, chunk_rows=7_777, progress=False)
    assert rows == n and len(names) == d
    assert torch.allclose(sol.weight, ref.weight, rtol=1e-8, atol=1e-12)
    assert torch.allclose(sol.bias, ref.bias, rtol=1e-8)
    csv = tmp_path / "big.csv"
    header = ",".join([f"f{i}" for i in range(d)] + ["y"])
    np.savetxt(csv, np.hstack([X, y[:, None]])[:20_000], delimiter=",", header=header, comments="", fmt="%.17g")
    ref_small = least_squares(torch.from_numpy(X[:20_000]), torch.from_numpy(y[:20_000]))
    sol, names, rows = solve_file(csv, "y", chunk_rows=3_000, progress=False)
    assert names == [f"f{i}" for i in range(d)]
    assert torch.allclose(sol.weight, ref_small.weight, rtol=1e-8, atol=1e-12)


def test_cli_streaming_run_folder(cli, tmp_path, house_csv):
    code, out, err = cli("train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price",
                         "--chunk-rows", "50", "--out", tmp_path / "s", "--no-progress")
    assert code == 0, err
    m = load_model(tmp_path / "s")
    data = torch.from_numpy(np.loadtxt(house_csv, delimiter=",", skiprows=1))
    from linearnet.data.split import is_val_row

    train = torch.from_numpy(~is_val_row(np.arange(len(data)), 0.2))  # the documented 20% held out, by row index
    ref = least_squares(data[train, :2], data[train, 2])  # in float64, on the training rows only
    assert torch.allclose(m.weight.double(), ref.weight, rtol=1e-6)
    assert torch.allclose(m.bias.double(), ref.bias, rtol=1e-6)


def test_folder_of_parquet_and_csv_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(4)
    X = rng.normal(size=(9000, 3)) * [2, 0.5, 30]
    y = X @ np.array([1.5, -4.0, 0.1]) - 2 + rng.normal(0, 0.01, 9000)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(9000), 3)):
        cols = {"a": X[part, 0], "b": X[part, 1], "c": X[part, 2], "target": y[part]}
        if i == 1:
            header = "a,b,c,target"
            np.savetxt(folder / f"part{i}.csv", np.column_stack(list(cols.values())), delimiter=",", header=header,
                       comments="", fmt="%.17g")
        else:
            pq.write_table(pa.table(cols), folder / f"part{i}.parquet")
    sol, names, rows = solve_file(folder, "target", chunk_rows=1000, progress=False)
    ref = least_squares(torch.from_numpy(X), torch.from_numpy(y))
    assert rows == 9000 and names == ["a", "b", "c"]
    assert torch.allclose(sol.weight, ref.weight, rtol=1e-8, atol=1e-12)
