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
    assert abs(float(m.weight[0, 0]) - 3000) < 60
