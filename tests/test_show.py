"""Looking at a trained run: ``show`` (coefficients in the data's units), ``evaluate`` on the run's own
validation rows, and ``predict``'s labelled picture written beside the model."""

from __future__ import annotations

import json

import pytest
import torch

from linearnet.evaluation.summary import raw_coefficients
from linearnet.inference import TrainedModel
from linearnet.persist import load_model


def _coefficients(out: str) -> dict[str, float]:
    rows = out.split("model: prediction")[1].splitlines()[1:]
    return {line.split()[0]: float(line.split()[1]) for line in rows if line.startswith("  ")}


def test_show_gives_coefficients_in_the_data_units(cli, tmp_path, house_csv):
    common = ["train", "linreg", "--impl", "closed-form", "--data", house_csv, "--target", "price"]
    assert cli(*common, "--out", tmp_path / "std")[0] == 0  # standardized features and target
    assert cli(*common, "--no-standardize", "--out", tmp_path / "raw")[0] == 0
    code, out, err = cli("show", tmp_path / "std")
    assert code == 0, err
    assert "configuration (config.json):" in out and "target price" in out and "val_rmse" in out
    assert "true_w" not in out  # synthetic-data fields are left out for a CSV run
    got = _coefficients(out)
    raw = load_model(tmp_path / "raw")  # the raw-unit least-squares solution: the known answer
    expected = {"area": float(raw.weight[0, 0]), "age": float(raw.weight[0, 1]), "intercept": float(raw.bias[0])}
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert abs(got[name] - value) <= 1e-4 * abs(value), (name, got[name], value)


def test_raw_coefficients_reproduce_the_model_on_raw_inputs(cli, tmp_path, house_csv):
    assert cli("train", "linreg", "--data", house_csv, "--target", "price", "--epochs", "5", "--no-progress",
               "--out", tmp_path / "r")[0] == 0
    model = TrainedModel.load(tmp_path / "r")
    X = torch.tensor([[100.0, 10.0], [200.0, 50.0], [60.0, 79.0]])
    coef, intercept = raw_coefficients(model)
    assert torch.allclose(X.double() @ coef.T.reshape(2) + intercept, model.predict(X).double(), rtol=1e-5)


def test_show_softmax_and_evaluate_on_own_validation_rows(cli, tmp_path):
    path = tmp_path / "animals.csv"
    g = torch.Generator().manual_seed(0)
    k = torch.randint(0, 3, (300,), generator=g)
    X = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])[k] + 0.7 * torch.randn(300, 2, generator=g)
    names = ["cat", "dog", "eel"]
    path.write_text("f1,f2,animal\n" + "".join(f"{a:.3f},{b:.3f},{names[c]}\n" for (a, b), c in zip(X.tolist(), k)))
    run = tmp_path / "run"
    assert cli("train", "softmax", "--data", path, "--target", "animal", "--epochs", "10", "--batch-size", "16",
               "--out", run, "--no-progress")[0] == 0
    code, out, err = cli("show", run)
    assert code == 0, err
    assert "softmax over 3 classes from 2 inputs" in out and "val accuracy per class:" in out
    table = out.split("then the intercept:\n")[1].split("files:")[0].splitlines()
    assert table[0].split() == ["f1", "f2", "intercept"]
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in table[1:]}
    assert list(rows) == names
    point = torch.tensor([[3.0, -1.0]])  # the printed table gives the model's logits on raw inputs
    logits = torch.tensor([r[0] * 3.0 - r[1] + r[2] for r in rows.values()])
    assert torch.allclose(logits, TrainedModel.load(run).decision_function(point)[0], rtol=1e-3, atol=1e-3)
    code, out, err = cli("evaluate", run)  # no --data: the run's own validation rows
    assert code == 0, err
    result = json.loads(out)
    metrics = json.loads((run / "metrics.json").read_text())
    assert result["split"] == "validation" and result["rows"] == 60  # 20% of 300
    assert abs(result["accuracy"] - metrics["val_acc"]) < 1e-9


def test_evaluate_csv_regression_defaults_to_validation_rows(cli, tmp_path, house_csv):
    run = tmp_path / "r"
    assert cli("train", "linreg", "--data", house_csv, "--target", "price", "--epochs", "5", "--no-progress",
               "--out", run)[0] == 0
    code, out, err = cli("evaluate", run)
    assert code == 0, err
    result, metrics = json.loads(out), json.loads((run / "metrics.json").read_text())
    assert result["rows"] == 60
    assert abs(result["rmse"] - metrics["val_rmse"]) <= 1e-4 * metrics["val_rmse"]
    assert abs(result["r2"] - metrics["val_r2"]) < 1e-6
    code, out, err = cli("evaluate", run, "--data", house_csv)  # every row of a given file
    assert code == 0 and json.loads(out)["rows"] == 300 and json.loads(out)["split"] == "all"


def test_evaluate_streamed_run_scores_its_validation_rows_and_show_refuses_unfinished_runs(cli, tmp_path, house_csv):
    run = tmp_path / "s"
    assert cli("train", "linreg", "--impl", "closed-form", "--chunk-rows", "100", "--data", house_csv, "--target",
               "price", "--out", run, "--no-progress")[0] == 0
    code, out, err = cli("evaluate", run)  # the rows the chunked run held out by index, as training scored them
    metrics = json.loads((run / "metrics.json").read_text())
    assert code == 0 and json.loads(out)["split"] == "validation", err
    assert abs(json.loads(out)["rmse"] - metrics["val_rmse"]) <= 1e-6 * metrics["val_rmse"]
    partial = tmp_path / "u.partial"
    partial.mkdir()
    (partial / "config.json").write_text('{"model": "linreg"}')
    code, _, err = cli("show", tmp_path / "u")
    assert code == 2 and f"--resume {tmp_path / 'u'}" in err


def test_predict_picture_goes_to_the_run_folder_and_says_which_label_is_which(cli, tmp_path, monkeypatch, fmnist):
    from linearnet import TrainConfig, train_run
    from linearnet.evaluation import plots

    run = tmp_path / "sm"
    train_run(TrainConfig.create("softmax", epochs=1, progress=False), run, log=lambda s: None,
              write_figures=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("predict", run, "--n", "3")
    assert code == 0, err
    assert (run / "predictions-3.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sm"]  # nothing in the working directory
    assert out.splitlines()[0].split() == ["true", "->", "predicted"]
    fig = plots.predictions_figure(fmnist.test_images[:2], ["Bag", "Coat"], ["Bag", "Shirt"])
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles == ["true: Bag\npred: Bag", "true: Coat\npred: Shirt (wrong)"]


def test_evaluate_a_synthetic_run_redraws_its_own_data(cli, tmp_path):
    from linearnet.data import synthetic_regression

    assert cli("train", "linreg", "--impl", "closed-form", "--seed", "3", "--out", tmp_path / "s")[0] == 0
    code, out, err = cli("evaluate", tmp_path / "s")
    assert code == 0, err
    result = json.loads(out)
    X, y = synthetic_regression([2, -3.4], 4.2, n=1000, noise=0.01, seed=3)  # the run's data, same seed
    model = load_model(tmp_path / "s")
    pred = X.double() @ model.weight.double().t() + model.bias.double()
    expected = float(((pred - y.double()) ** 2).mean().sqrt())
    assert result["rows"] == 1000 and result["split"].startswith("training")
    assert abs(result["rmse"] - expected) < 1e-6


def test_show_leaves_out_options_a_softmax_table_run_never_used(cli, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    path = tmp_path / "t.csv"
    path.write_text("a,b,kind\n" + "".join(f"{a},{b},{'up' if a + b > 0 else 'down'}\n" for a, b in X))
    assert cli("train", "softmax", "--data", path, "--target", "kind", "--epochs", "2", "--no-progress",
               "--out", tmp_path / "c")[0] == 0
    code, out, err = cli("show", tmp_path / "c")
    assert code == 0, err
    assert "target kind" in out and "loss squared" not in out and "huber_delta" not in out


def test_show_and_evaluate_agree_on_a_fashion_mnist_run(cli, tmp_path, fmnist):
    from linearnet.data.fashion_mnist import TEXT_LABELS

    run = tmp_path / "fm"
    assert cli("train", "softmax", "--epochs", "1", "--no-progress", "--out", run)[0] == 0
    code, shown, err = cli("show", run)
    assert code == 0, err
    code, out, err = cli("evaluate", run)
    assert code == 0, err
    result, metrics = json.loads(out), json.loads((run / "metrics.json").read_text())
    assert result["test_acc"] == metrics["test_acc"] and f"test_acc {metrics['test_acc']:.6g}" in shown
    # per class: the class-index order in both, one class a line in show with evaluate's value
    assert list(result["per_class_accuracy"]) == TEXT_LABELS
    block = shown.split("test accuracy per class:\n")[1].splitlines()[:10]
    assert [line.rsplit(" ", 1)[0].strip() for line in block] == TEXT_LABELS
    assert [float(line.split()[-1]) for line in block] == pytest.approx(list(result["per_class_accuracy"].values()))
    # a wrapped line ends at a pair's comma: no key is parted from its value
    for line in shown.split("model:")[0].splitlines():
        if line.startswith("  "):
            assert len(line) <= 101 and all(len(pair.split()) == 2 for pair in line.strip(" ,").split(", ")), line


@pytest.mark.parametrize("written_by", ["this version", "an older version"])
def test_a_csv_run_records_no_synthetic_fields_and_old_configs_still_work(cli, tmp_path, house_csv, written_by):
    from linearnet.config import ONLY_FOR

    run = tmp_path / "r"
    assert cli("train", "linreg", "--data", house_csv, "--target", "price", "--epochs", "2", "--no-progress",
               "--out", run)[0] == 0
    config = json.loads((run / "config.json").read_text())
    assert not set(config) & {*ONLY_FOR["synthetic"], *ONLY_FOR["fashion-mnist"]}
    assert config["target"] == "price" and config["data"] == str(house_csv)
    if written_by == "an older version":  # which recorded every field
        config.update(true_w=[2.0, -3.4], true_b=4.2, num_examples=1000, noise=0.01, data_dir=None,
                      allow_download=True, resize=None, normalize=False)
        (run / "config.json").write_text(json.dumps(config))
    code, out, err = cli("show", run)
    assert code == 0 and "target price" in out and "true_w" not in out, err
    code, out, err = cli("evaluate", run)
    assert code == 0 and json.loads(out)["split"] == "validation", err
    code, out, err = cli("train", "linreg", "--resume", run, "--epochs", "3", "--no-progress")
    assert code == 0, err
    assert (run / "history.csv").read_text().count("\n") == 4  # header + 3 epochs
    code, _, err = cli("train", "linreg", "--resume", run, "--epochs", "4", "--lr", "0.5", "--no-progress")
    assert code == 2 and "--lr" in err


def test_a_synthetic_run_still_records_its_data_fields(cli, tmp_path):
    assert cli("train", "linreg", "--epochs", "1", "--no-progress", "--out", tmp_path / "s")[0] == 0
    config = json.loads((tmp_path / "s" / "config.json").read_text())
    assert config["true_w"] == [2.0, -3.4] and config["noise"] == 0.01 and "data_dir" not in config
