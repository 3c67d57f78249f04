"""Exact answers that pin the core: hand-written IDX bytes, the solver switch, rank shards, the CSV split.

Each test here compares against a result computed independently on the same data (a byte string typed
by hand, ``torch.linalg.lstsq``, the split indices, a pseudo-inverse), so that a deliberate change to
the code it guards fails it (``make mutants`` checks exactly that).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import expected_hashes, tiny_fashion_files, write_gz_dir

from linearnet import least_squares
from linearnet.data import Batches, train_val_split
from linearnet.data import fashion_mnist as fm
from linearnet.data.idx import idx_bytes, parse_idx
from linearnet.models.closed_form import Moments, solve_moments
from linearnet.persist import load_model

# ----- IDX: the bytes of the format, typed by hand --------------------------------------------------
HAND_IDX = [
    # (array, bytes): magic 00 00, type code, ndim, big-endian uint32 dimensions, big-endian data
    (np.array([1, -2], dtype=np.int32), "00000c01" "00000002" "00000001" "fffffffe"),
    (np.array([1.0, -2.5], dtype=np.float32), "00000d01" "00000002" "3f800000" "c0200000"),
    (np.array([[258]], dtype=np.int16), "00000b02" "00000001" "00000001" "0102"),
    (np.array([1.0], dtype=np.float64), "00000e01" "00000001" "3ff0000000000000"),
    (np.array([[7, 250, 0]], dtype=np.uint8), "00000802" "00000001" "00000003" "07fa00"),
    (np.array([-1], dtype=np.int8), "00000901" "00000001" "ff"),
]


@pytest.mark.parametrize("array,hexbytes", HAND_IDX, ids=[str(a.dtype) for a, _ in HAND_IDX])
def test_idx_bytes_are_the_documented_big_endian_layout(array, hexbytes):
    raw = bytes.fromhex(hexbytes)
    assert idx_bytes(array) == raw
    got = parse_idx(raw)
    assert got.dtype == array.dtype.newbyteorder("=") and got.shape == array.shape
    assert np.array_equal(got, array)


# ----- closed form: the Cholesky / QR switch and the eigen-solve ------------------------------------
def _design(eps: float, n: int = 2000, seed: int = 0):
    """Two nearly collinear columns (condition number ~ 1/eps^2 after scaling) and a third, noiseless y."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, generator=g, dtype=torch.float64)
    X = torch.stack([a, a + eps * torch.randn(n, generator=g, dtype=torch.float64),
                     torch.randn(n, generator=g, dtype=torch.float64) * 10 + 3], 1)
    w = torch.tensor([1.5, -0.5, 0.25], dtype=torch.float64)
    return X, X @ w + 2.0, w


def _lstsq(X, y):
    A = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], 1)
    sol = torch.linalg.lstsq(A, y.reshape(-1, 1), driver="gelsd").solution.reshape(-1)
    return sol[:-1], sol[-1]


@pytest.mark.parametrize("eps,method", [(1.0, "cholesky"), (1e-4, "qr")])
def test_solver_switches_to_qr_above_condition_1e6(eps, method):
    X, y, w = _design(eps)
    sol = least_squares(X, y)
    assert sol.method == method, sol.condition
    assert (sol.condition > 1e6) == (method == "qr")
    ref_w, ref_b = _lstsq(X, y)
    assert torch.allclose(sol.weight.reshape(-1), ref_w, rtol=1e-6, atol=1e-9)
    assert torch.allclose(sol.bias.reshape(()), ref_b, rtol=1e-8)


def test_eigen_solve_of_ill_conditioned_moments_matches_lstsq():
    X, y, w = _design(1e-3)  # condition ~1e7: past Cholesky's limit, well within the eigen-solve's accuracy
    sol = solve_moments(Moments.of(X, y))
    assert sol.method == "eigh"
    assert torch.allclose(sol.weight.reshape(-1), w, rtol=1e-5)
    assert abs(float(sol.bias) - 2.0) < 1e-6


def test_singular_moments_give_the_pseudo_inverse_solution():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(500, generator=g, dtype=torch.float64)
    b = torch.randn(500, generator=g, dtype=torch.float64)
    X = torch.stack([a, 2 * a, b], 1)  # column 2 = 2 x column 1
    y = 3 * a + b - 1 + 0.01 * torch.randn(500, generator=g, dtype=torch.float64)
    with pytest.warns(UserWarning, match="minimum-norm"):
        sol = solve_moments(Moments.of(X, y))
    Xc, yc = X - X.mean(0), y - y.mean()
    ref = torch.linalg.pinv(Xc) @ yc
    assert sol.method == "min-norm"
    assert torch.allclose(sol.weight.reshape(-1), ref, rtol=1e-8, atol=1e-10)
    assert math.isclose(float(sol.bias), float(y.mean() - X.mean(0) @ ref), rel_tol=1e-9)


def test_moments_merge_equals_one_pass_statistics():
    g = torch.Generator().manual_seed(5)
    X = torch.randn(301, 3, generator=g, dtype=torch.float64) * 4 + 10
    y = torch.randn(301, 2, generator=g, dtype=torch.float64)
    whole = Moments.of(X, y)
    merged = Moments.of(X[:100], y[:100]).merge(Moments.of(X[100:], y[100:]))
    assert merged.n == 301
    for a, b in [(merged.mean_x, whole.mean_x), (merged.cxx, whole.cxx), (merged.cxy, whole.cxy)]:
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-9)


# ----- data parallel: each rank's share of every global batch ----------------------------------------
@pytest.mark.parametrize("world", [2, 3])
def test_rank_shards_are_disjoint_and_cover_each_global_batch(world):
    n, bs = 103, 10
    X, y = torch.arange(n).reshape(n, 1), torch.arange(n)
    whole = [set(b.tolist()) for _, b in Batches(X, y, bs, shuffle=True, seed=7)]
    shards = [[set(b.tolist()) for _, b in Batches(X, y, bs, shuffle=True, seed=7, rank=r, world_size=world)]
              for r in range(world)]
    assert all(len(s) == len(whole) for s in shards)
    for i, batch in enumerate(whole):
        parts = [s[i] for s in shards]
        assert sum(len(p) for p in parts) == len(batch)  # disjoint
        assert set().union(*parts) == batch              # and covering


@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_over_rows_equal_batches_over_the_reordered_copy(drop_last):
    # rows= (the sklearn adapters' canonical order) must behave exactly as the copy X[rows], y[rows]
    n = 53
    X, y = torch.arange(2 * n).reshape(n, 2), torch.arange(n) * 10
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:43]
    lazy = list(Batches(X, y, 8, shuffle=True, seed=3, drop_last=drop_last, rows=rows))
    copy = list(Batches(X[rows], y[rows], 8, shuffle=True, seed=3, drop_last=drop_last))
    assert len(lazy) == len(copy) == len(Batches(X, y, 8, drop_last=drop_last, rows=rows)) == (5 if drop_last else 6)
    for (a, b), (c, d) in zip(lazy, copy):
        assert torch.equal(a, c) and torch.equal(b, d)
    assert set(torch.cat([b for _, b in lazy]).tolist()) <= set((rows * 10).tolist())


def test_sharded_moments_each_rank_reduces_its_own_rows(monkeypatch):
    from linearnet.scale import distributed

    g = torch.Generator().manual_seed(1)
    X = torch.randn(1001, 3, generator=g, dtype=torch.float64)
    y = torch.randn(1001, generator=g, dtype=torch.float64)
    monkeypatch.setattr(distributed, "all_gather_moments", lambda local, d, k: local)  # keep each rank's own
    world = 3
    parts = []
    for rank in range(world):
        monkeypatch.setattr(distributed, "rank_world", lambda rank=rank: (rank, world))
        parts.append(distributed.sharded_moments(X, y, chunk_rows=100))
    assert [p.n for p in parts] == [333, 334, 334]
    total = parts[0].merge(parts[1]).merge(parts[2])
    whole = Moments.of(X, y)
    assert total.n == 1001 and torch.allclose(total.cxx, whole.cxx, rtol=1e-12)


# ----- CSV runs: split, standardization, saved weights and predictions, exactly ---------------------
def _house_rows(path):
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return torch.from_numpy(data[:, :2]), torch.from_numpy(data[:, 2])


def test_csv_closed_form_fits_exactly_the_training_rows(cli, tmp_path, house_csv):
    run = tmp_path / "cf"
    code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price",
                       "--no-standardize", "--out", run, "--no-progress")
    assert code == 0, err
    X, y = _house_rows(house_csv)
    tr, va = train_val_split(len(X), 0.2, 0)  # the documented 20% validation rows, seed 0
    assert len(va) == 60
    ref = least_squares(X[tr], y[tr])
    m = load_model(run)
    assert torch.allclose(m.weight.double(), ref.weight, rtol=1e-6)
    assert torch.allclose(m.bias.double(), ref.bias, rtol=1e-6)
    metrics = json.loads((run / "metrics.json").read_text())
    pred = X[va] @ ref.weight.reshape(-1) + ref.bias
    assert math.isclose(metrics["val_rmse"], float(((pred - y[va]) ** 2).mean().sqrt()), rel_tol=1e-5)


def test_csv_standardizer_uses_training_rows_and_predict_applies_it(cli, tmp_path, house_csv):
    run = tmp_path / "sgd"
    code, _, err = cli("train", "linreg", "--data", house_csv, "--target", "price", "--out", run,
                       "--epochs", "2", "--no-progress")
    assert code == 0, err
    X, y = _house_rows(house_csv)
    tr, _ = train_val_split(len(X), 0.2, 0)
    m = load_model(run)
    assert torch.allclose(m.extras["x_mean"].double(), X[tr].mean(0), rtol=1e-6)
    assert torch.allclose(m.extras["x_std"].double(), X[tr].std(0, unbiased=False), rtol=1e-6)
    assert torch.allclose(m.extras["y_mean"].double(), y[tr].mean(), rtol=1e-6)
    new = tmp_path / "new.csv"
    new.write_text("area,age\n100,10\n200,50\n61.5,3\n")
    code, out, err = cli("predict", run, "--data", new)
    assert code == 0, err
    got = torch.tensor([float(v) for v in out.split()[1:]], dtype=torch.float64)
    Xn = torch.tensor([[100, 10], [200, 50], [61.5, 3]], dtype=torch.float64)
    ex = {k: v.double() for k, v in m.extras.items()}
    z = ((Xn - ex["x_mean"]) / ex["x_std"]) @ m.weight.double().reshape(-1) + m.bias.double()
    assert torch.allclose(got, z * ex["y_std"] + ex["y_mean"], rtol=1e-5)


# ----- scikit-learn: intercept in the caller's units --------------------------------------------------
def test_softmax_regression_intercept_is_in_the_callers_units():
    from linearnet.sklearn import SoftmaxRegression, expected_failed_checks

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X @ [1.0, -2.0, 0.5] + rng.normal(0, 0.3, 300) > 0).astype(int) + (X[:, 0] > 1)
    shift = np.array([100.0, -40.0, 7.0])
    a = SoftmaxRegression(max_iter=5, random_state=0).fit(X, y)
    b = SoftmaxRegression(max_iter=5, random_state=0).fit(X + shift, y)
    # internal standardization makes the fit shift-invariant: same coef_, intercept_ moved by -coef_ @ shift
    assert np.allclose(a.coef_, b.coef_, rtol=1e-4, atol=1e-6)
    assert np.allclose(b.intercept_, a.intercept_ - a.coef_ @ shift, rtol=1e-4, atol=1e-4)
    assert np.array_equal(a.predict(X), b.predict(X + shift))
    assert expected_failed_checks(a) == {}  # the README claims 0 expected failures


# ----- Fashion-MNIST sources: --data-dir, then $LINEARNET_DATA, then the cache ----------------------
def test_data_sources_are_tried_in_the_documented_order(tmp_path):
    files = tiny_fashion_files()
    good = expected_hashes(files)
    dirs = {name: write_gz_dir(tmp_path / name, files) for name in ("root", "env", "cache", "system")}

    def source(**kw):
        return fm.load_fashion_mnist(allow_download=False, files=good, progress=False, log=lambda s: None,
                                     **kw).source

    every = dict(root=dirs["root"], env_dir=dirs["env"], cache_dir=dirs["cache"], system_dir=dirs["system"])
    assert source(**every).startswith("--data-dir")
    assert source(**{**every, "root": None}).startswith("LINEARNET_DATA")
    assert source(**{**every, "root": None, "env_dir": None}).startswith("cache")
    empty = tmp_path / "empty"
    assert source(root=None, env_dir=None, cache_dir=empty, system_dir=dirs["system"]).startswith("debian")
