"""Real tables: float64 precision, one reader for every path, strict JSON and the checks around them (issue 16)."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression as SkLinearRegression

from linearnet import least_squares, train_val_split
from linearnet.config import TrainConfig
from linearnet.data.split import is_val_row
from linearnet.data.tabular import Standardizer, column_stats, load_csv
from linearnet.errors import ConfigError, DataError
from linearnet.io import write_json
from linearnet.persist import load_model
from linearnet.scale.streaming import _metrics_from_moments, _solve, iter_chunks, solve_file, validation_metrics


def _write(path, header, cols, fmt="%.17g"):
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=",".join(header), comments="", fmt=fmt)
    return path


def _strict_json(path):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(path.read_text(), parse_constant=refuse)


# ----- 1. precision ---------------------------------------------------------------------------------
def _offset_table(kind: str, n: int = 1500):
    rng = np.random.default_rng(0 if kind == "offset" else 1)
    x = rng.normal(size=n)
    if kind == "offset":  # the t = 1e9 + U(0, 100)
        t = 1e9 + rng.uniform(0, 100, n)
        y = (t - 1e9) / 100 + x + rng.normal(0, 0.01, n)
    else:                 # a Unix timestamp over one day
        t = 1.7e9 + rng.uniform(0, 86400, n)
        y = (t - 1.7e9) / 86400 + x + rng.normal(0, 0.001, n)
    return np.column_stack([t, x]), y


def _sk_rmse(X, y, train, val):
    sk = SkLinearRegression().fit(X[train], y[train])
    return float(np.sqrt(np.mean((sk.predict(X[val]) - y[val]) ** 2)))


def _predicted(cli, run, path):
    code, out, err = cli("predict", run, "--data", path)
    assert code == 0, err
    return np.array([float(v) for v in out.split()[1:]])


@pytest.mark.parametrize("kind", ["offset", "timestamp"])
def test_large_offset_columns_match_sklearn_in_memory_streamed_and_after_predict(cli, tmp_path, kind):
    X, y = _offset_table(kind)
    path = _write(tmp_path / "t.csv", ["t", "x", "y"], [X, y])
    n = len(y)
    # in memory: the loader's random split
    tr, va = (i.numpy() for i in train_val_split(n, 0.2, 0))
    ref = _sk_rmse(X, y, tr, va)
    code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", path, "--target", "y",
                       "--out", tmp_path / "mem", "--no-progress")
    assert code == 0, err
    mem = _strict_json(tmp_path / "mem" / "metrics.json")["val_rmse"]
    assert abs(mem / ref - 1) < 0.01, (mem, ref)
    pred = _predicted(cli, tmp_path / "mem", path)
    assert abs(np.sqrt(np.mean((pred[va] - y[va]) ** 2)) / ref - 1) < 0.01
    model = load_model(tmp_path / "mem")
    assert model.weight.dtype == torch.float64 and model.extras["x_mean"].dtype == torch.float64
    # streamed: the split by row index
    val = is_val_row(np.arange(n), 0.2)
    ref_s = _sk_rmse(X, y, ~val, val)
    code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", path, "--target", "y",
                       "--chunk-rows", "100", "--out", tmp_path / "s", "--no-progress")
    assert code == 0, err
    m = _strict_json(tmp_path / "s" / "metrics.json")
    assert m["val_rows"] == int(val.sum()) and m["train_rows"] == n - int(val.sum()) and m["rows"] == n
    assert abs(m["val_rmse"] / ref_s - 1) < 0.01, (m["val_rmse"], ref_s)
    pred = _predicted(cli, tmp_path / "s", path)
    assert abs(np.sqrt(np.mean((pred[val] - y[val]) ** 2)) / ref_s - 1) < 0.01
    assert load_model(tmp_path / "s").bias.dtype == torch.float64
    # SGD trains in float32 on float64-standardized values: within a few percent
    code, _, err = cli("train", "linreg", "--impl", "scratch", "--epochs", "10", "--data", path, "--target", "y",
                       "--out", tmp_path / "sgd", "--no-progress")
    assert code == 0, err
    sgd = _strict_json(tmp_path / "sgd" / "metrics.json")["val_rmse"]
    assert sgd / ref < 1.05, (sgd, ref)


def test_table_values_are_float64_exactly(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("t,y\n1700000000.125,1\n1700000000.25,2\n1700000001.5,3\n")
    table = load_csv(path, "y")
    assert table.X.dtype == torch.float64
    assert table.X[:, 0].tolist() == [1700000000.125, 1700000000.25, 1700000001.5]


# ----- 2. standardization ---------------------------------------------------------------------------
def test_constant_only_relative_to_own_magnitude():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(0, 1e-13, 500),          # tiny but varying: kept
                         1e9 + rng.uniform(0, 100, 500),      # large offset: std ~ 29
                         np.full(500, 1e9),                   # exactly constant
                         np.full(500, 3.0),
                         rng.normal(0, 1e200, 500)])          # huge: must not overflow
    mean, std = column_stats(X)
    ref = X[:, :4].std(0)  # the huge column's reference is scaled first (its square would overflow)
    assert np.allclose(std[0], ref[0], rtol=1e-10)
    assert np.allclose(std[1], ref[1], rtol=1e-10)
    assert std[2] == 1 and std[3] == 1
    assert np.isfinite(float(std[4])) and np.allclose(float(std[4]), np.std(X[:, 4] / 1e200) * 1e200, rtol=1e-10)
    Z = Standardizer(mean, std).transform(torch.from_numpy(X))
    assert torch.allclose(Z[:, 0].std(unbiased=False), torch.tensor(1.0, dtype=torch.float64))


def test_cli_sgd_fits_a_feature_with_std_1e_13(cli, tmp_path):
    rng = np.random.default_rng(2)
    a = rng.normal(0, 1e-13, 600)
    y = a * 1e13 + rng.normal(0, 0.01, 600)
    path = _write(tmp_path / "t.csv", ["a", "y"], [a, y])
    code, _, err = cli("train", "linreg", "--data", path, "--target", "y", "--epochs", "5",
                       "--out", tmp_path / "r", "--no-progress")
    assert code == 0, err
    assert _strict_json(tmp_path / "r" / "metrics.json")["val_r2"] > 0.99


def test_sklearn_sgd_handles_tiny_std_and_large_offsets():
    from linearnet.sklearn import LinearRegression, SoftmaxRegression

    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(0, 1e-7, 800), rng.normal(size=800)])
    y = 1e7 * X[:, 0] + X[:, 1]
    est = LinearRegression(solver="sgd", random_state=0).fit(X, y)
    assert abs(est.coef_[0] / 1e7 - 1) < 0.05
    Xo = np.column_stack([1e9 + rng.uniform(0, 100, 800), rng.normal(size=800)])
    yo = (Xo[:, 0] - 1e9) / 100 + Xo[:, 1]
    assert LinearRegression(solver="sgd", random_state=0).fit(Xo, yo).score(Xo, yo) > 0.99
    Xt = np.column_stack([1.7e12 + rng.uniform(0, 1e5, 800)])
    labels = (Xt[:, 0] > 1.7e12 + 5e4).astype(int)
    assert SoftmaxRegression(random_state=0).fit(Xt, labels).score(Xt, labels) > 0.95


def test_sklearn_divergence_names_the_parameter_not_a_flag():
    from linearnet.errors import DivergenceError
    from linearnet.sklearn import LinearRegression

    X = np.random.default_rng(0).normal(size=(100, 2))
    with pytest.raises(DivergenceError) as info:
        LinearRegression(solver="sgd", lr=1e6, random_state=0).fit(X, X @ [1.0, 2.0])
    assert "lr=" in str(info.value) and "--lr" not in str(info.value)


# ----- 3. one CSV semantics -------------------------------------------------------------------------
def _parquet(path, cols):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(cols), path)
    return path


def _bad_latin1(t):
    p = t / "l.csv"
    p.write_bytes("caf\xe9,y\n1,2\n3,4\n5,6\n".encode("latin-1"))
    return p


def _bad_text_parquet(t):
    return _parquet(t / "s.parquet", {"a": ["1", "x", "3"], "y": [1.0, 2.0, 3.0]})


def _bad_object_npy(t):
    p = t / "o.npy"
    np.save(p, np.array([[1, "a"], [2, "b"]], dtype=object), allow_pickle=True)
    return p


def _write_text(name, text):
    def make(t):
        p = t / name
        p.write_text(text)
        return p
    return make


BAD = {
    "latin-1": (_bad_latin1, "UTF-8"),
    "text in parquet": (_bad_text_parquet, "row 1, column 'a' is '1' (string), not a number"),
    "object npy": (_bad_object_npy, "Python objects"),
    "extra field": (_write_text("e.csv", "a,b,y\n1,2,3\n4,5,6,7\n8,9,10\n1,1,1\n"), "line 3 has 4 fields"),
    "duplicate header": (_write_text("d.csv", "a,a,y\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n"), "duplicate column names"),
    "empty target": (_write_text("t.csv", "a,y\n1,2\n\n3,\n5,6\n"), "line 4, target 'y' is empty"),
    "text feature": (_write_text("x.csv", "a,y\n1,2\nabc,3\n5,6\n"), "line 3, feature 'a' is 'abc'"),
    "inf feature": (_write_text("i.csv", "a,y\n1,2\n1e400,3\n5,6\n"), "line 3, feature 'a' is infinite"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_in_memory_and_streamed_refuse_the_same_files_alike(tmp_path, case):
    make, needle = BAD[case]
    path = make(tmp_path)
    with pytest.raises(DataError) as mem:
        load_csv(path, "y")
    with pytest.raises(DataError) as streamed:
        list(iter_chunks(path, "y", chunk_rows=2)[1])
    assert needle in str(mem.value), str(mem.value)
    assert str(mem.value) == str(streamed.value)
    assert str(mem.value).count(".") >= 1 and "\n" not in str(mem.value)


@pytest.mark.parametrize("case", ["extra field", "latin-1", "empty target"])
def test_cli_streamed_and_in_memory_errors_are_identical(cli, tmp_path, case):
    path = BAD[case][0](tmp_path)
    errs = []
    for extra in ([], ["--chunk-rows", "2"]):
        code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", path, "--target", "y",
                           "--out", tmp_path / "r", "--no-progress", *extra)
        assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
        errs.append(err)
    assert errs[0] == errs[1]


def _same_everywhere(path, target, features=None):
    table = load_csv(path, target, features)
    names, chunks = iter_chunks(path, target, features, chunk_rows=2)
    X = torch.cat([x for x, _ in chunks])
    assert names == table.feature_names and torch.equal(X, table.X)
    return table


def test_parquet_named_csv_header_with_spaces_and_big_unused_cell_read_alike(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=6), rng.normal(size=6)
    p = _parquet(tmp_path / "really_parquet.csv", {"a": a, "b": b, "y": a + b})
    assert _same_everywhere(p, "y").X[:, 0].tolist() == a.tolist()
    spaced = tmp_path / "s.csv"
    spaced.write_text("a, b, y\n1, 2, 3\n4, 5, 6\n7, 8, 9\n1, 0, 1\n")
    assert _same_everywhere(spaced, "y", ["a", "b"]).X.tolist() == [[1, 2], [4, 5], [7, 8], [1, 0]]
    big = tmp_path / "big.csv"
    big.write_text("a,note,y\n" + "".join(f"{i},{'z' * 200_000 if i == 1 else 'ok'},{i * 2}\n" for i in range(5)))
    assert _same_everywhere(big, "y", ["a"]).X.reshape(-1).tolist() == [0, 1, 2, 3, 4]


def test_features_select_npy_columns_or_are_refused(tmp_path):
    arr = np.arange(24, dtype=np.float64).reshape(6, 4)
    p = tmp_path / "a.npy"
    np.save(p, arr)
    names, chunks = iter_chunks(p, None, ["x2", "x0"], chunk_rows=4)
    X = torch.cat([x for x, _ in chunks])
    assert names == ["x2", "x0"] and X.tolist() == arr[:, [2, 0]].tolist()
    table = load_csv(p, "y", ["x2", "x0"])
    assert torch.equal(table.X, X) and table.y.reshape(-1).tolist() == arr[:, 3].tolist()
    with pytest.raises(DataError, match="no column names"):
        list(iter_chunks(p, None, ["price"])[1])
    with pytest.raises(DataError, match="no column names"):
        load_csv(p, "y", ["price"])


def test_labels_come_back_as_canonical_strings(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("a,label\n1,1\n2,1.0\n3,2\n4,cat\n")
    names, chunks = iter_chunks(p, "label", chunk_rows=3, labels=True)
    ys = np.concatenate([y for _, y in chunks]).tolist()
    assert ys == ["1", "1", "2", "cat"]


def test_streamed_val_fraction_is_honoured_and_deterministic(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1000, 2))
    y = X @ [1.0, -1.0] + rng.normal(0, 0.1, 1000)
    p = _write(tmp_path / "v.csv", ["a", "b", "y"], [X, y])
    sol, _, rows = solve_file(p, "y", chunk_rows=77, progress=False, val_fraction=0.25)
    val = is_val_row(np.arange(1000), 0.25)
    assert rows == 750 and val.sum() == 250
    ref = least_squares(torch.from_numpy(X[~val]), torch.from_numpy(y[~val]))
    assert torch.allclose(sol.weight, ref.weight, rtol=1e-10)


@pytest.mark.parametrize("noise", [0.1, 0.0])
def test_streamed_validation_scores_from_statistics_equal_a_pass_over_the_rows(tmp_path, noise):
    rng = np.random.default_rng(12)
    X = rng.normal(size=(3000, 3)) * [1, 1e3, 1e-3] + [0, 1e6, 5]
    y = X @ [1.0, 2e-3, 4e3] + 7 + rng.normal(0, noise, 3000) * (noise > 0)
    p = _write(tmp_path / "v.csv", ["a", "b", "c", "y"], [X, y])
    sol, _, _, val = _solve(p, "y", None, 500, False, 0.2)
    exact = validation_metrics(p, "y", None, 500, sol, 0.2)
    quick = _metrics_from_moments(val, sol)
    if noise:
        assert quick["val_rows"] == exact["val_rows"] == 600
        assert abs(quick["val_rmse"] / exact["val_rmse"] - 1) < 1e-9 and abs(quick["val_r2"] - exact["val_r2"]) < 1e-12
    else:  # a perfect fit: the statistics would cancel, so the caller scores the rows
        assert quick is None and exact["val_rmse"] < 1e-9


def test_streamed_ill_conditioned_data_is_as_accurate_as_in_memory(tmp_path):
    rng = np.random.default_rng(0)
    n = 5000
    x1 = rng.normal(size=n)
    x2 = x1 + 1e-6 * rng.normal(size=n)
    X = np.column_stack([x1, x2, rng.normal(size=n)])
    y = X @ [1.0, 2.0, -1.0] + 0.5 + rng.normal(0, 1e-3, n)
    np.save(tmp_path / "pair.npy", np.column_stack([X, y]))
    ref = np.linalg.lstsq(np.column_stack([X, np.ones(n)]), y, rcond=None)[0]
    sol, _, _ = solve_file(tmp_path / "pair.npy", None, chunk_rows=512, progress=False)
    assert sol.method == "tsqr"
    assert np.abs(sol.weight.numpy().reshape(-1) - ref[:3]).max() < 1e-7
    # an 11-column Vandermonde design is ill-conditioned but not singular
    t = np.linspace(0, 1, 4000)
    V = np.column_stack([t ** k for k in range(1, 12)])
    yv = np.cos(3 * t)
    np.save(tmp_path / "vdm.npy", np.column_stack([V, yv]))
    sol, _, _ = solve_file(tmp_path / "vdm.npy", None, chunk_rows=300, progress=False)
    mem = least_squares(torch.from_numpy(V), torch.from_numpy(yv))
    assert sol.method == "tsqr" and mem.method == "qr"
    fit_s = V @ sol.weight.numpy().reshape(-1) + float(sol.bias[0])
    fit_m = V @ mem.weight.numpy().reshape(-1) + float(mem.bias[0])
    assert np.abs(fit_s - fit_m).max() < 1e-9


# ----- 4. beyond float32 ----------------------------------------------------------------------------
def test_values_beyond_float32_are_handled_in_float64_or_refused_by_name(cli, tmp_path):
    rng = np.random.default_rng(6)
    a = rng.normal(size=300) * 1e39
    b = rng.normal(size=300)
    y = a / 1e39 + b + rng.normal(0, 0.01, 300)
    p = _write(tmp_path / "big.csv", ["a", "b", "y"], [a, b, y])
    for impl in ("closed-form", "scratch"):
        code, _, err = cli("train", "linreg", "--impl", impl, "--data", p, "--target", "y", "--epochs", "5",
                           "--out", tmp_path / impl, "--no-progress")
        assert code == 0, err
        assert _strict_json(tmp_path / impl / "metrics.json")["val_r2"] > 0.99
    w = load_model(tmp_path / "closed-form").weight
    assert torch.isfinite(w).all()
    code, _, err = cli("train", "linreg", "--data", p, "--target", "y", "--no-standardize",
                       "--out", tmp_path / "raw", "--no-progress")
    assert code == 2 and "'a'" in err and "row 1" in err and "float32" in err
    yb = _write(tmp_path / "bigy.csv", ["b", "y"], [b, (2 * b + rng.normal(0, 0.01, 300)) * 1e39])
    code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", yb, "--target", "y",
                       "--out", tmp_path / "ybig", "--no-progress")
    assert code == 0, err
    assert _strict_json(tmp_path / "ybig" / "metrics.json")["val_r2"] > 0.99


# ----- 5. strict JSON -------------------------------------------------------------------------------
def test_write_json_turns_nan_and_inf_into_null(tmp_path):
    write_json(tmp_path / "m.json", {"a": float("inf"), "b": [float("nan"), 1.5], "c": np.float64("-inf"),
                                     "d": torch.tensor([1.0, float("nan")])})
    assert _strict_json(tmp_path / "m.json") == {"a": None, "b": [None, 1.5], "c": None, "d": [1.0, None]}


def test_singular_design_metrics_are_strict_json(cli, tmp_path):
    rng = np.random.default_rng(7)
    a = rng.normal(size=200)
    p = _write(tmp_path / "s.csv", ["a", "a2", "y"], [a, 2 * a, 3 * a + 1])
    with pytest.warns(UserWarning):
        code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", p, "--target", "y",
                           "--out", tmp_path / "r", "--no-progress")
    assert code == 0, err
    assert _strict_json(tmp_path / "r" / "metrics.json")["condition_number"] is None


# ----- 6. smaller -----------------------------------------------------------------------------------
def test_numeric_labels_compare_as_numbers(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("a,label\n1,1\n2,1.0\n3,2\n4,2.00\n")
    table = load_csv(p, "label", task="classification")
    assert table.classes == ["1", "2"] and table.y.tolist() == [0, 0, 1, 1]


def test_label_na_is_a_class_and_an_empty_label_names_its_line(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("a,label\n1,NA\n2,b\n\n3,b\n")
    assert load_csv(p, "label", task="classification").classes == ["NA", "b"]
    p.write_text("a,label\n1,NA\n2,b\n\n3,\n")
    with pytest.raises(DataError, match="line 5, the target 'label' is empty"):
        load_csv(p, "label", task="classification")


def test_target_among_features_is_refused(cli, tmp_path):
    p = _write(tmp_path / "t.csv", ["a", "y"], [np.arange(10.0), np.arange(10.0)])
    with pytest.raises(DataError, match="also listed as a feature"):
        load_csv(p, "y", ["a", "y"])
    code, _, err = cli("train", "linreg", "--data", p, "--target", "y", "--features", "a,y",
                       "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and "also listed as a feature" in err


def test_val_fraction_zero_says_there_is_no_validation_split(cli, tmp_path, house_csv):
    code, out, err = cli("train", "linreg", "--data", house_csv, "--target", "price", "--val-fraction", "0",
                         "--out", tmp_path / "r", "--no-progress")
    assert code == 0, err
    assert "no validation split" in out and "nan" not in out.lower().split("no validation split")[1]


def test_rows_versus_features_is_checked_after_the_split(cli, tmp_path):
    rng = np.random.default_rng(8)
    p = _write(tmp_path / "w.csv", [f"f{i}" for i in range(8)] + ["y"], [rng.normal(size=(10, 8)),
                                                                          rng.normal(size=10)])
    code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", p, "--target", "y",
                       "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and "after the validation split" in err and err.count("\n") == 1
    code, _, err = cli("train", "linreg", "--data", p, "--target", "y", "--val-fraction", "0.9999",
                       "--out", tmp_path / "r2", "--no-progress")
    assert code == 2 and "1 training rows" in err


def test_predict_and_sgd_folder_messages_name_no_missing_option(cli, tmp_path, house_csv):
    run = tmp_path / "r"
    assert cli("train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price",
               "--out", run, "--no-progress")[0] == 0
    other = tmp_path / "o.csv"
    other.write_text("zzz\n1\n2\n")
    code, _, err = cli("predict", run, "--data", other)
    assert code == 2 and "no feature column" in err and "--features" not in err
    folder = tmp_path / "parts"
    folder.mkdir()
    code, _, err = cli("train", "linreg", "--data", folder, "--target", "y", "--out", tmp_path / "d",
                       "--no-progress")
    assert code == 2 and "folder" in err and "not found" not in err


def test_huge_seed_is_a_config_error(cli, tmp_path):
    with pytest.raises(ConfigError, match="seed"):
        TrainConfig(seed=10**23)
    code, _, err = cli("train", "linreg", "--seed", "99999999999999999999999", "--out", tmp_path / "r",
                       "--no-progress")
    assert code == 2 and "--seed" in err and "Traceback" not in err


def test_softmax_refuses_a_continuous_target_unless_asked(cli, tmp_path):
    rng = np.random.default_rng(9)
    a = rng.normal(size=300)
    p = _write(tmp_path / "c.csv", ["a", "y"], [a, np.round(a * 10 + rng.normal(size=300), 3)])
    code, _, err = cli("train", "softmax", "--data", p, "--target", "y", "--epochs", "1", "--out", tmp_path / "r",
                       "--no-progress")
    assert code == 2 and "--allow-many-classes" in err and "linreg" in err
    code, _, err = cli("train", "softmax", "--data", p, "--target", "y", "--epochs", "1", "--out", tmp_path / "r2",
                       "--no-progress", "--allow-many-classes", "--val-fraction", "0")
    assert code == 0, err


def test_in_memory_loader_peak_memory_is_within_3x_the_array(tmp_path):
    rng = np.random.default_rng(10)
    p = _write(tmp_path / "wide.csv", [f"f{i}" for i in range(800)] + ["y"], [rng.normal(size=(2500, 801))],
               fmt="%.6g")
    tracemalloc.start()
    try:
        table = load_csv(p, "y")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    final = table.X.numpy().nbytes + table.y.numpy().nbytes
    assert peak < 3 * final, (peak, final)


def test_sklearn_sample_weight_and_2d_y_match_sklearn():
    from linearnet.sklearn import LinearRegression

    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 3)) * [1, 10, 0.1]
    Y = np.column_stack([X @ [1.0, 2.0, 3.0] + 1, X @ [-1.0, 0.5, 30.0] - 2]) + rng.normal(0, 0.5, (400, 2))
    w = rng.uniform(0, 3, 400)
    ours = LinearRegression().fit(X, Y[:, 0], sample_weight=w)
    ref = SkLinearRegression().fit(X, Y[:, 0], sample_weight=w)
    assert np.allclose(ours.coef_, ref.coef_, rtol=1e-9) and abs(ours.intercept_ - ref.intercept_) < 1e-9
    ours2, ref2 = LinearRegression().fit(X, Y), SkLinearRegression().fit(X, Y)
    assert ours2.coef_.shape == (2, 3) and np.allclose(ours2.coef_, ref2.coef_, rtol=1e-9)
    assert np.allclose(ours2.predict(X), ref2.predict(X), rtol=1e-9)
    sgd = LinearRegression(solver="sgd", random_state=0).fit(X, Y, sample_weight=np.round(w))
    ref3 = SkLinearRegression().fit(X, Y, sample_weight=np.round(w))
    assert sgd.predict(X).shape == (400, 2) and sgd.score(X, Y) > 0.98 * ref3.score(X, Y)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.sampled_from([b"PAR1", b"\x93NUMPY", b"a,y\n"]), st.binary(max_size=300))
def test_damaged_parquet_npy_and_csv_give_data_errors(tmp_path, magic, body):
    path = tmp_path / "f.csv"
    path.write_bytes(magic + body)
    for read in (lambda: load_csv(path, "y"), lambda: list(iter_chunks(path, "y", chunk_rows=3)[1])):
        try:
            read()
        except DataError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["parquet", "npy"]), st.integers(0, 10_000), st.binary(min_size=1, max_size=8))
def test_mutated_real_parquet_and_npy_files_give_data_errors(tmp_path, kind, pos, patch):
    src = tmp_path / "src"
    if kind == "parquet":
        _parquet(src, {"a": [1.0, 2.0, 3.0], "y": [1.0, 0.0, 2.0]})
    else:
        with open(src, "wb") as fh:
            np.save(fh, np.arange(12.0).reshape(4, 3))
    raw = bytearray(src.read_bytes())
    pos %= len(raw)
    raw[pos:pos + len(patch)] = patch
    path = tmp_path / "f.dat"
    path.write_bytes(bytes(raw))
    for read in (lambda: load_csv(path, "y"), lambda: list(iter_chunks(path, "y", chunk_rows=2)[1])):
        try:
            read()
        except DataError:
            pass


def test_parquet_numeric_columns_read_alike_in_one_call_or_column_by_column(tmp_path):
    """Integer and float columns are read by arrow in one call (column-major); a boolean column sends the
    batch down the per-column path. Both give the same float64 values, on one thread or many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linearnet.data.tabular import read_chunks

    rng = np.random.default_rng(0)
    n = 2500
    cols = {"f64": rng.normal(size=n) * 1e6, "f32": rng.normal(size=n).astype(np.float32),
            "i64": rng.integers(-2**40, 2**40, n), "i8": rng.integers(-100, 100, n).astype(np.int8)}
    want = np.column_stack([np.asarray(v, dtype=np.float64) for v in cols.values()])
    y = rng.normal(size=n)
    fast = tmp_path / "fast.parquet"
    pq.write_table(pa.table({**cols, "y": y}), fast, row_group_size=700)
    slow = tmp_path / "slow.parquet"
    pq.write_table(pa.table({**cols, "flag": rng.integers(0, 2, n).astype(bool), "y": y}), slow,
                   row_group_size=700)
    for path in (fast, slow):
        for threaded in (True, False):
            names, chunks = read_chunks(path, "y", None, 1000, threaded=threaded)
            got = [c for c in chunks]
            X = np.concatenate([c.X for c in got])
            assert names[:4] == list(cols)
            np.testing.assert_array_equal(X[:, :4], want)
            np.testing.assert_array_equal(np.concatenate([c.y for c in got]), y)
            assert [len(c.rows) for c in got] == [1000, 1000, 500]
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"a": pa.array([1, 2, None, 4], pa.int64()), "y": [1.0, 2.0, 3.0, 4.0]}), nulls)
    with pytest.raises(DataError, match=r"row 3, feature 'a' is empty or NaN"):
        list(read_chunks(nulls, "y")[1])
