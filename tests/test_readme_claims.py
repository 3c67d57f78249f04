"""What the README promises a newcomer, each claim run through the command line and checked against its answer."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from conftest import find_checkpoint

from linearnet import least_squares
from linearnet.data import fashion_mnist as fm
from linearnet.data import synthetic_regression
from linearnet.data.split import is_val_row
from linearnet.persist import load_model


def _history(run):
    with open(run / "history.csv") as fh:
        return list(csv.DictReader(fh))


# ----- linearnet chapter ------------------------------------------------------------------------------
def test_chapter_runs_every_experiment_and_prints_the_table(cli, tmp_path):
    """The linear-regression half of `linearnet chapter` (the softmax half trains 2 x 10 epochs: its runs
    are checked by the softmax tests and the accuracy benchmark), then the table's softmax rows."""
    from linearnet.chapter import CHAPTER_NUMBERS, format_table

    out = tmp_path / "chapter"
    code, text, err = cli("chapter", "--out", out, "--skip-softmax")
    assert code == 0, err
    table = text[text.index("experiment"):].splitlines()
    rows = {line[:20].strip(): line.split() for line in table if line[:20].strip()}
    assert [k for k in rows if k.startswith(("linreg", "softmax"))] == ["linreg scratch", "linreg concise",
                                                                        "linreg analytic", "linreg closed-form"]
    for impl in ("scratch", "concise", "analytic", "closed-form"):
        metrics = json.loads((out / f"linreg-{impl}" / "metrics.json").read_text())
        assert max(map(abs, metrics["w_error"])) < 0.002
        assert rows[f"linreg {impl}"][4] == f"{metrics.get('train_eval_loss', metrics['train_loss']):.6f}"
    assert rows["linreg scratch"][3] == "0.000049"  # the chapter's number beside ours
    assert (out / "normal.png").is_file()
    softmax = format_table([{"experiment": "softmax scratch", "ours_train_loss": 0.4481, "ours_train_acc": 0.8472,
                             "ours_test_acc": 0.8331, "seconds": 1.0}]).splitlines()
    assert softmax[1].split() == ["softmax", "scratch", "train", "loss",
                                  f"{CHAPTER_NUMBERS['softmax scratch']['train_loss']:.3f}", "0.448", "1.00"]
    assert softmax[3].split() == ["test", "acc", "0.836", "0.833"]


# ----- a Fashion-MNIST run: predict, evaluate, resume --------------------------------------------------
SOFTMAX = ("train", "softmax", "--impl", "concise", "--checkpoint-every", "1", "--no-progress")


@pytest.fixture(scope="module")
def fashion_runs(tmp_path_factory):
    from linearnet.cli.main import main

    root = tmp_path_factory.mktemp("fm")
    assert main([*SOFTMAX, "--epochs", "2", "--out", str(root / "two")]) == 0
    assert main([*SOFTMAX, "--epochs", "1", "--out", str(root / "one")]) == 0
    assert main(["train", "softmax", "--resume", str(root / "one"), "--epochs", "2", "--no-progress"]) == 0
    return root


def test_resumed_softmax_concise_run_equals_one_long_run(fashion_runs):
    a, b = load_model(fashion_runs / "two"), load_model(fashion_runs / "one")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in _history(fashion_runs / "two")]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in _history(fashion_runs / "one")] == strip


def _logits(model, images):
    return (images.reshape(len(images), -1).float() / 255) @ model.weight.t() + model.bias


def test_predict_on_a_fashion_mnist_run(cli, fashion_runs, fmnist, tmp_path):
    code, out, err = cli("predict", fashion_runs / "two", "--n", "6", "--out", tmp_path / "p.png")
    assert code == 0, err
    model = load_model(fashion_runs / "two")
    pred = _logits(model, fmnist.test_images[:6]).argmax(1)
    expected = [f"{fm.TEXT_LABELS[int(t)]:>12} -> {fm.TEXT_LABELS[int(p)]}"
                for t, p in zip(fmnist.test_labels[:6], pred)]
    lines = out.splitlines()
    assert lines[0].split() == ["true", "->", "predicted"] and lines[1:7] == expected
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_a_fashion_mnist_run(cli, fashion_runs, fmnist):
    code, out, err = cli("evaluate", fashion_runs / "two")
    assert code == 0, err
    result = json.loads(out)
    pred = _logits(load_model(fashion_runs / "two"), fmnist.test_images).argmax(1)
    assert result["rows"] == 10000
    assert abs(result["test_acc"] - float((pred == fmnist.test_labels).double().mean())) <= 2e-4
    metrics = json.loads((fashion_runs / "two" / "metrics.json").read_text())
    assert abs(result["test_acc"] - metrics["test_acc"]) <= 2e-4


def test_evaluate_a_csv_run_gives_rmse_and_r2_of_the_model(cli, tmp_path, house_csv):
    run = tmp_path / "cf"
    assert cli("train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price", "--out", run,
               "--no-progress")[0] == 0
    code, out, err = cli("evaluate", run, "--data", house_csv)
    assert code == 0, err
    result = json.loads(out)
    data = torch.from_numpy(np.loadtxt(house_csv, delimiter=",", skiprows=1))
    m = load_model(run)
    ex = {k: v.double() for k, v in m.extras.items()}
    z = ((data[:, :2] - ex["x_mean"]) / ex["x_std"]) @ m.weight.double().reshape(-1) + m.bias.double()
    resid = z * ex["y_std"] + ex["y_mean"] - data[:, 2]
    assert result["rows"] == 300
    assert math.isclose(result["rmse"], float(resid.pow(2).mean().sqrt()), rel_tol=1e-4)
    assert math.isclose(result["r2"], 1 - float(resid.pow(2).sum() / (data[:, 2] - data[:, 2].mean()).pow(2).sum()),
                        rel_tol=1e-5)


# ----- data fetch / bench -------------------------------------------------------------------------------
def test_data_fetch_and_bench(cli):
    code, out, err = cli("data", "fetch", "--no-download")
    assert code == 0 and out.startswith("Fashion-MNIST ready: ") and "verified" in out, err
    code, out, err = cli("data", "bench", "--no-download", "--batch-size", "2048")
    assert code == 0, err
    names = [line.split(":")[0].strip() for line in out.splitlines()]
    assert names == ["linearnet batches", "per-sample PIL Dataset + DataLoader (0 workers)",
                     "per-sample PIL Dataset + DataLoader (4 workers)"]
    assert all(float(line.split(":")[1].split()[0]) > 0 for line in out.splitlines())


# ----- checkpoints, schedules, losses -------------------------------------------------------------------
@pytest.mark.parametrize("examples,written", [(20000, True), (19999, False)])
def test_default_checkpoint_cadence(cli, tmp_path, examples, written):
    """Checkpoints by default from 100k example-epochs on: 20000 x 5 is the threshold."""
    run = tmp_path / "r"
    code, _, err = cli("train", "linreg", "--num-examples", examples, "--epochs", "5", "--batch-size", "1000",
                       "--out", run, "--no-progress")
    assert code == 0, err
    assert (find_checkpoint(run) is not None) == written


@pytest.mark.parametrize("schedule,epochs,factors", [
    ("step", 3, [1, 1, 0.1]),                                   # x0.1 after two thirds
    ("step", 6, [1, 1, 1, 1, 0.1, 0.1]),
    ("cosine", 4, [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]),
    ("constant", 2, [1, 1]),
])
def test_lr_schedules_follow_their_formulas(cli, tmp_path, schedule, epochs, factors):
    run = tmp_path / "r"
    code, _, err = cli("train", "linreg", "--lr-schedule", schedule, "--epochs", epochs, "--lr", "0.02",
                       "--batch-size", "100", "--out", run, "--no-progress")
    assert code == 0, err
    assert [float(r["lr"]) for r in _history(run)] == pytest.approx([0.02 * f for f in factors], rel=1e-12)


def test_huber_loss_is_the_loss_trained_and_reported(cli, tmp_path):
    run = tmp_path / "h"
    code, _, err = cli("train", "linreg", "--loss", "huber", "--huber-delta", "0.5", "--epochs", "1",
                       "--batch-size", "100", "--out", run, "--no-progress")
    assert code == 0, err
    X, y = synthetic_regression([2, -3.4], 4.2, 1000, noise=0.01, seed=0)  # the chapter's data, seed 0
    m = load_model(run)
    pred = X @ m.weight.reshape(-1, 1) + m.bias
    expected = torch.nn.functional.huber_loss(pred, y, delta=0.5)
    reported = json.loads((run / "metrics.json").read_text())["train_eval_loss"]
    assert reported == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) > 0.05  # one short epoch: residuals still reach the linear part of the loss
    assert reported != pytest.approx(float(((pred - y) ** 2 / 2).mean()), rel=1e-3)


# ----- resume of CSV runs -------------------------------------------------------------------------------
@pytest.mark.parametrize("model,impl", [("linreg", "scratch"), ("softmax", "scratch")])
def test_resumed_csv_run_equals_one_long_run(cli, tmp_path, house_csv, model, impl):
    data = house_csv
    target = "price"
    if model == "softmax":
        rows = np.loadtxt(house_csv, delimiter=",", skiprows=1)
        data = tmp_path / "cls.csv"
        labels = np.where(rows[:, 2] > np.median(rows[:, 2]), "dear", "cheap")
        data.write_text("area,age,band\n" + "".join(f"{a},{b},{c}\n" for (a, b, _), c in zip(rows, labels)))
        target = "band"
    common = ("train", model, "--impl", impl, "--data", data, "--target", target, "--checkpoint-every", "1",
              "--no-progress")
    assert cli(*common, "--epochs", "4", "--out", tmp_path / "long")[0] == 0
    assert cli(*common, "--epochs", "2", "--out", tmp_path / "short")[0] == 0
    code, out, err = cli("train", model, "--resume", tmp_path / "short", "--epochs", "4", "--no-progress")
    assert code == 0 and "resuming" in out, err
    a, b = load_model(tmp_path / "long"), load_model(tmp_path / "short")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


# ----- .npy and Parquet through the command line ----------------------------------------------------------
def _table(n=5000, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1, 20, 0.1] + [5, 0, -1]
    y = X @ np.array([0.7, -0.05, 12.0]) + 3 + rng.normal(0, 0.1, n)
    return X, y


@pytest.mark.parametrize("fmt", ["npy", "parquet"])
def test_npy_and_parquet_files_train_the_exact_solution(cli, tmp_path, fmt):
    X, y = _table()
    if fmt == "npy":
        path, extra = tmp_path / "d.npy", ()
        np.save(path, np.hstack([X, y[:, None]]))  # the last column is the target
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path, extra = tmp_path / "d.parquet", ("--target", "y")
        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y}), path)
    code, _, err = cli("train", "linreg", "--impl", "closed-form", "--data", path, *extra, "--out", tmp_path / "r",
                       "--no-progress")
    assert code == 0, err
    train = ~is_val_row(np.arange(len(y)), 0.2)  # the default validation split of a streamed file, by row index
    ref = least_squares(torch.from_numpy(X[train]), torch.from_numpy(y[train]))
    m = load_model(tmp_path / "r")
    assert torch.allclose(m.weight.double(), ref.weight, rtol=1e-6)
    assert torch.allclose(m.bias.double(), ref.bias, rtol=1e-6)
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["train_rows"] == int(train.sum()) == 4000
