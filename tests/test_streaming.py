"""Streaming exact least squares equals the in-memory solver."""

from __future__ import annotations

import numpy as np
import torch

from linearnet import least_squares
from linearnet.data.split import is_val_row
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
    train = torch.from_numpy(~is_val_row(np.arange(len(data)), 0.2))  # the default split, by row index
    ref = least_squares(data[train, :2], data[train, 2])  # streaming solves on the training rows, in float64
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


def test_each_rank_reads_only_its_part_of_one_file(tmp_path, monkeypatch):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import pytest

    from linearnet.data.tabular import read_chunks
    from linearnet.errors import DataError

    rng = np.random.default_rng(3)
    n = 1037
    X = rng.normal(size=(n, 3))
    y = rng.integers(0, 3, n)
    csv = tmp_path / "t.csv"
    with open(csv, "w") as fh:
        fh.write("a,b,c,y\n")
        for i in range(n):
            fh.write(",".join(f"{v:.17g}" for v in X[i]) + f",{y[i]}\n" + ("\n" if i == 500 else ""))
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), tmp_path / "t.parquet",
                   row_group_size=100)
    np.save(tmp_path / "t.npy", np.column_stack([X, y]))
    parsed = []
    real = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda src, **kw: parsed.append(src) or real(src, **kw))
    for name in ("t.csv", "t.parquet", "t.npy"):
        whole = list(read_chunks(tmp_path / name, "y", None, 64)[1])
        for world in (2, 3):
            parts = [list(read_chunks(tmp_path / name, "y", None, 64, rank=r, world_size=world)[1])
                     for r in range(world)]
            assert all(parts)  # each rank has rows of its own
            got = [c for p in parts for c in p]
            # the ranks' consecutive parts make the file, row numbers and line names included
            assert np.array_equal(np.concatenate([c.rows for c in got]), np.concatenate([c.rows for c in whole]))
            assert sum(len(c.rows) for c in got) == n
            assert np.array_equal(np.concatenate([c.X for c in got]), np.concatenate([c.X for c in whole]))
            assert [c.where[i] for c in got for i in range(len(c.rows))] == \
                   [c.where[i] for c in whole for i in range(len(c.rows))]
    # a CSV rank hands pandas its byte range only, not the whole file
    assert all(hasattr(s, "read") for s in parsed[1:]) and len(parsed) == 1 + 2 + 3
    for name in ("t.csv", "t.parquet", "t.npy"):  # a resumed pass starts after its chunks, cut as before
        for world in (1, 2):
            for rank in range(world):
                mine = list(read_chunks(tmp_path / name, "y", None, 64, rank=rank, world_size=world)[1])
                for skip in (1, 3, len(mine)):
                    rest = list(read_chunks(tmp_path / name, "y", None, 64, rank=rank, world_size=world,
                                            skip_chunks=skip)[1])
                    assert len(rest) == len(mine) - skip
                    for a, b in zip(rest, mine[skip:]):
                        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.X, b.X)
                        assert a.where[0] == b.where[0] and list(a.y) == list(b.y)
    # a malformed row in rank 1's range is named by its line in the whole file
    lines = csv.read_text().splitlines()
    lines[900] += ",7"
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 901 has 5 fields"):
        list(read_chunks(csv, "y", None, 64, rank=1, world_size=2)[1])
