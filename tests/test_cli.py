"""The command line: run folders, prediction, figures, and one clear sentence for every bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from linearnet.persist import load_model


def test_train_linreg_writes_a_complete_run_folder(cli, tmp_path):
    code, out, err = cli("train", "linreg", "--out", tmp_path / "run", "--no-progress")
    assert code == 0, err
    assert "epoch 1, loss " in out and "epoch 3, loss " in out
    assert "w error" in out
    run = tmp_path / "run"
    for name in ("config.json", "history.csv", "metrics.json", "model.safetensors", "loss.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["lr"] == 0.03
    assert len((run / "history.csv").read_text().splitlines()) == 4
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_csv_training_converges_at_default_lr_and_predicts(cli, tmp_path, house_csv):
    run = tmp_path / "house"
    # default lr and batch size; raw units in the file (areas ~100, prices ~1e5)
    code, out, err = cli("train", "linreg", "--data", house_csv, "--target", "price", "--out", run,
                         "--epochs", "20", "--no-progress")
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["val_r2"] > 0.98, metrics
    assert metrics["val_rmse"] < 8000
    model = load_model(run)
    assert model.meta["feature_names"] == ["area", "age"]
    assert "x_mean" in model.extras and "y_std" in model.extras
    new = tmp_path / "new.csv"
    new.write_text("age,area\n10,100\n50,200\n")  # column order differs: names are used
    code, out, err = cli("predict", run, "--data", new, "--out", tmp_path / "p.csv")
    assert code == 0, err
    preds = [float(v) for v in (tmp_path / "p.csv").read_text().split()[1:]]
    expected = [3000 * 100 - 1500 * 10 + 50000, 3000 * 200 - 1500 * 50 + 50000]
    assert all(abs(p - e) / e < 0.03 for p, e in zip(preds, expected)), preds


def test_closed_form_on_csv_and_no_standardize(cli, tmp_path, house_csv):
    code, out, err = cli("train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price",
                         "--no-standardize", "--out", tmp_path / "cf")
    assert code == 0, err
    m = load_model(tmp_path / "cf")
    assert abs(float(m.weight[0, 0]) - 3000) < 60 and abs(float(m.weight[0, 1]) + 1500) < 60


def test_plot_normal_and_vectorize_demo(cli, tmp_path):
    code, out, _ = cli("plot", "normal", "--out", tmp_path / "n.png")
    assert code == 0 and (tmp_path / "n.png").read_bytes()[:4] == b"\x89PNG"
    code, out, _ = cli("demo", "vectorize", "--n", "2000")
    assert code == 0 and "faster" in out


def _csv(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


BAD = {
    "missing file": (lambda t: ["--data", t / "nope.csv", "--target", "y"], "not found"),
    "no header": (lambda t: ["--data", _csv(t, "1,2\n3,4\n5,6\n"), "--target", "y"], "header"),
    "text feature": (lambda t: ["--data", _csv(t, "x,y\n1,2\nabc,3\n4,5\n"), "--target", "y"], "'abc'"),
    "nan feature": (lambda t: ["--data", _csv(t, "x,y\n1,2\nnan,3\n4,5\n"), "--target", "y"], "NaN"),
    "inf feature": (lambda t: ["--data", _csv(t, "x,y\n1,2\ninf,3\n4,5\n"), "--target", "y"], "inf"),
    "missing target": (lambda t: ["--data", _csv(t, "x,z\n1,2\n3,4\n"), "--target", "y"], "target column 'y'"),
    "no target flag": (lambda t: ["--data", _csv(t, "x,y\n1,2\n3,4\n")], "--target"),
    "few rows": (lambda t: ["--data", _csv(t, "a,b,c,y\n1,2,3,4\n5,6,7,8\n"), "--target", "y"], "more rows"),
    "lr zero": (lambda t: ["--lr", "0"], "--lr"),
    "lr negative": (lambda t: ["--lr", "-1"], "--lr"),
    "batch zero": (lambda t: ["--batch-size", "0"], "--batch-size"),
    "batch negative": (lambda t: ["--batch-size", "-5"], "--batch-size"),
    "missing feature column": (lambda t: ["--data", _csv(t, "x,y\n1,2\n3,4\n5,7\n"), "--target", "y",
                                          "--features", "x,q"], "'q'"),
    "epochs negative": (lambda t: ["--epochs", "-1"], "--epochs"),
    "diverges": (lambda t: ["--lr", "1e6"], "diverged"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_exit_2_and_one_sentence(cli, tmp_path, case):
    make_args, needle = BAD[case]
    out_dir = tmp_path / "out"
    code, out, err = cli("train", "linreg", "--no-progress", "--out", out_dir, *make_args(tmp_path))
    assert code == 2, (out, err)
    assert needle in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (out_dir / "model.safetensors").exists()


def test_divergence_names_epoch_and_step(cli, tmp_path):
    code, _, err = cli("train", "linreg", "--lr", "1e6", "--out", tmp_path / "d", "--no-progress")
    assert code == 2 and "epoch 1, step" in err and "smaller learning rate" in err


def test_existing_run_folder_is_refused_without_overwrite(cli, tmp_path):
    assert cli("train", "linreg", "--out", tmp_path / "r", "--no-progress")[0] == 0
    code, _, err = cli("train", "linreg", "--out", tmp_path / "r", "--no-progress")
    assert code == 2 and "--overwrite" in err
    assert cli("train", "linreg", "--out", tmp_path / "r", "--no-progress", "--overwrite")[0] == 0


def test_unwritable_out_is_a_clear_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli("train", "linreg", "--out", blocker / "sub", "--no-progress")
    assert code == 2 and "--out" in err


def test_python_dash_m_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "linearnet", "train", "linreg", "--lr", "-3", "--out",
                           str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--lr must be a finite number > 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_model_weights_in_file_match_metrics(tmp_path, cli):
    assert cli("train", "linreg", "--out", tmp_path / "r", "--no-progress")[0] == 0
    m = load_model(tmp_path / "r")
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    # the errors against the chapter's true parameters, and the saved model against the closed form on the
    # same 1000 examples: three epochs of SGD end within noise of the least-squares optimum
    from linearnet import least_squares, synthetic_regression

    X, y = synthetic_regression([2, -3.4], 4.2, 1000, noise=0.01, seed=0)
    ref = least_squares(X, y)
    assert (m.weight.double() - ref.weight).abs().max() < 1e-3 and abs(float(m.bias) - float(ref.bias)) < 1e-3
    assert metrics["w_error"] == pytest.approx([2 - float(m.weight[0, 0]), -3.4 - float(m.weight[0, 1])], abs=1e-6)
    assert metrics["b_error"] == pytest.approx(4.2 - float(m.bias[0]), abs=1e-6)


def test_predict_with_a_text_value_in_a_feature_is_exit_2(cli, tmp_path, house_csv):
    assert cli("train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price", "--out",
               tmp_path / "r", "--no-progress")[0] == 0
    bad = _csv(tmp_path, "area,age\n100,10\nbig,3\n", "new.csv")
    code, out, err = cli("predict", tmp_path / "r", "--data", bad, "--out", tmp_path / "p.csv")
    assert code == 2 and "'big'" in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "p.csv").exists()


def test_predict_out_naming_a_folder_says_so(cli, tmp_path, house_csv):
    assert cli("train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price", "--out",
               tmp_path / "r", "--no-progress")[0] == 0
    (tmp_path / "preds").mkdir()
    code, _, err = cli("predict", tmp_path / "r", "--data", house_csv, "--out", tmp_path / "preds")
    assert code == 2 and "is a folder; name a file" in err and "free some space" not in err
    assert list((tmp_path / "preds").iterdir()) == []


def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path, cli):
    # `linearnet predict RUN --data big.csv | head -2`: no BrokenPipeError traceback, SIGPIPE's exit code
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + "".join(f"{i % 97},{2 * (i % 97) + 1}\n" for i in range(100_000)))
    assert cli("train", "linreg", "--data", data, "--target", "y", "--out", tmp_path / "r", "--no-progress",
               "--epochs", "1")[0] == 0
    proc = subprocess.Popen([sys.executable, "-m", "linearnet", "predict", str(tmp_path / "r"), "--data", str(data)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"prediction"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and "Traceback" not in err and "Error" not in err


def test_predict_without_data_names_the_columns_the_model_reads(cli, tmp_path):
    # a synthetic-data run reads columns x0, x1: the message says so rather than "a CSV-trained model"
    assert cli("train", "linreg", "--out", tmp_path / "r", "--no-progress")[0] == 0
    code, _, err = cli("predict", tmp_path / "r")
    assert code == 2 and "a table with the columns x0, x1" in err
    _csv(tmp_path, "x0,x1\n1,2\n", "new.csv")
    code, out, _ = cli("predict", tmp_path / "r", "--data", tmp_path / "new.csv")
    w, b = [2.0, -3.4], 4.2  # the chapter's true parameters, learned to ~1e-3
    assert code == 0 and abs(float(out.split()[1]) - (w[0] * 1 + w[1] * 2 + b)) < 0.02
