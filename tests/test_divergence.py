"""A loss that blows up while staying finite stops the run like a NaN does (training/loop.py: BLOWUP)."""

from __future__ import annotations

import pytest
import torch

from linearnet import DivergenceError, fit
from linearnet.data import Batches
from linearnet.models import build_learner, build_net


def _classes(n=512, d=8, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g)
    y = (X[:, :k].argmax(1) + (torch.rand(n, generator=g) < 0.3).long()) % k  # not separable: CE grows with w
    return X, y


@pytest.mark.parametrize("impl", ["scratch", "concise"])
def test_finite_softmax_blowup_is_divergence(impl):
    X, y = _classes()
    learner = build_learner(build_net("softmax", impl, 8, 4, seed=0), "softmax", impl, 1e9)
    with pytest.raises(DivergenceError, match=r"diverged at epoch 1 \(mean loss .*over 1000 times the starting "
                                              r"loss 1\.\d+\); try a smaller learning rate"):
        fit(learner, Batches(X, y, 64), 2, classify=True)


@pytest.mark.parametrize("impl", ["scratch", "concise"])
def test_healthy_softmax_does_not_trip_the_rule(impl):
    X, y = _classes()
    learner = build_learner(build_net("softmax", impl, 8, 4, seed=0), "softmax", impl, 0.1)
    history = fit(learner, Batches(X, y, 64), 3, classify=True)
    assert history[-1]["train_loss"] < history[0]["train_loss"] < 1.4


def test_a_tiny_first_batch_near_zero_loss_is_no_reference():
    # batch size 1 and a first example the starting model already fits: its loss (~1e-10) says nothing
    # about the run's scale, so a healthy epoch (mean loss ~1) must not count as 1000 times it
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 2, generator=g)
    y = X @ torch.tensor([1.0, -1.0]) + 0.1 * torch.randn(200, generator=g)
    X[0], y[0] = 0.0, 1e-5  # the starting bias is 0: loss (1e-5)^2 / 2
    learner = build_learner(build_net("linreg", "scratch", 2, seed=0), "linreg", "scratch", 0.01)
    history = fit(learner, Batches(X, y.reshape(-1, 1), 1), 2)
    assert history[0]["train_loss"] > 1e-3 and history[1]["train_loss"] < history[0]["train_loss"]


def test_cli_softmax_blowup_exits_2_with_one_sentence_and_no_run_folder(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli("train", "softmax", "--lr", "1e9", "--epochs", "2", "--no-progress", "--out", out)
    assert code == 2, stdout
    assert "training diverged at epoch 1 (mean loss" in err and "smaller learning rate" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("model, impl, lr, batch", [("linreg", "scratch", 1.9, 10), ("softmax", "analytic", 1e9, 8)])
def test_small_batches_blowing_up_in_the_first_epoch_are_caught_against_the_true_start(model, impl, lr, batch):
    # batches under the probe's 64 rows: the starting loss is measured over several of them, before
    # each is trained on, so the first epoch is judged too, and against the loss the run started from
    import re

    if model == "linreg":
        g = torch.Generator().manual_seed(1)
        X = torch.randn(1000, 2, generator=g)
        y = (X @ torch.tensor([2.0, -3.4]) + 4.2).reshape(-1, 1)
        learner = build_learner(build_net("linreg", impl, 2, seed=0), "linreg", impl, lr)
        w0 = learner.module.export()[0]
        start = float(((y[:70] - X[:70] @ w0.t()) ** 2 / 2).mean())  # b starts at 0
        batches = Batches(X, y, batch)  # unshuffled: the probe sees rows 0-69, the 7 batches making 64 rows
    else:
        X, y = _classes()
        learner = build_learner(build_net("softmax", impl, 8, 4, seed=0), "softmax", impl, lr)
        start = None
        batches = Batches(X, y, batch)
    with pytest.raises(DivergenceError, match=r"diverged at epoch 1 \(mean loss") as info:
        fit(learner, batches, 1, classify=model == "softmax")
    said = float(re.search(r"starting loss ([0-9.e+-]+)\)", str(info.value)).group(1))
    if start is not None:
        assert said == pytest.approx(start, rel=1e-3)
    else:
        assert said == pytest.approx(1.386, abs=0.2)  # log 4: four classes from near-zero weights


def test_cli_linreg_blowup_at_the_default_batch_exits_2(cli, tmp_path):
    code, stdout, err = cli("train", "linreg", "--lr", "1.9", "--epochs", "1", "--no-progress", "--out", tmp_path / "r")
    assert code == 2 and "diverged at epoch 1" in err, (stdout, err)
    assert not (tmp_path / "r").exists()
