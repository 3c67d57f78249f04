"""The analytic implementation: hand-derived gradients equal autograd's, epochs equal scratch's, run folders work."""

from __future__ import annotations

import json

import pytest
import torch

from linearnet import TrainConfig, train_run
from linearnet.data import Batches
from linearnet.models import analytic, build_learner, build_net, scratch
from linearnet.persist import load_model


def _autograd_step(model, loss, X, y, wd, delta=1.0):
    """Reference: autograd's gradient of mean loss + wd/2 ||W||^2 (weights only) on a scratch net."""
    net = build_net(model, "scratch", X.shape[1], 10 if model == "softmax" else 1, seed=3)
    per = {"squared": scratch.squared_loss, "huber": lambda o, t: scratch.huber_loss(o, t, delta),
           "ce": scratch.cross_entropy}[loss]
    objective = per(net(X), y).mean()
    for p in net.parameters():
        if p.dim() >= 2:
            objective = objective + wd / 2 * (p * p).sum()
    objective.backward()
    weight = net.W if model == "softmax" else net.w
    return weight.grad.reshape(-1), net.b.grad


@pytest.mark.parametrize("model,loss,wd", [("linreg", "squared", 0.0), ("linreg", "squared", 0.1),
                                           ("linreg", "huber", 0.0), ("linreg", "huber", 0.05),
                                           ("softmax", "ce", 0.0), ("softmax", "ce", 0.01)])
def test_one_step_applies_autograds_gradient(model, loss, wd):
    g = torch.Generator().manual_seed(1)
    n, d = 37, 12
    X = torch.randn(n, d, generator=g) * 2
    y = torch.randint(0, 10, (n,), generator=g) if model == "softmax" else torch.randn(n, 1, generator=g) * 3
    ref_w, ref_b = _autograd_step(model, loss, X, y, wd, delta=0.7)
    net = build_net(model, "analytic", d, 10 if model == "softmax" else 1, seed=3)
    before_w, before_b = net.export()
    lr = 0.5
    learner = build_learner(net, model, "analytic", lr, wd, "huber" if loss == "huber" else "squared", 0.7)
    learner.train_step(X, y)
    after_w, after_b = net.export()
    # the step is p -= lr * grad: recover the gradient the analytic path applied
    assert torch.allclose((before_w - after_w).reshape(-1) / lr, ref_w, atol=1e-6)
    assert torch.allclose((before_b - after_b) / lr, ref_b, atol=1e-6)
    assert ref_w.abs().max() > 1e-2  # a real gradient, not a vanishing one


def test_loss_derivatives_match_autograd_per_output():
    # the analytic losses take outputs transposed, (q, n), and return the summed loss and dl/do in that layout
    g = torch.Generator().manual_seed(0)
    o = (torch.randn(50, 1, generator=g) * 3).requires_grad_()
    y = torch.randn(50, 1, generator=g)
    for mine, ref in ((analytic.squared_loss, scratch.squared_loss),
                      (lambda a, b: analytic.huber_loss(a, b, 0.5), lambda a, b: scratch.huber_loss(a, b, 0.5))):
        l, G = mine(o.detach().t(), y)
        r = ref(o, y)
        (grad,) = torch.autograd.grad(r.sum(), o)
        assert torch.allclose(l, r.detach().sum(), atol=1e-5) and torch.allclose(G.t(), grad, atol=1e-6)
    logits = (torch.randn(40, 10, generator=g) * 5).requires_grad_()
    soft = torch.softmax(torch.randn(40, 10, generator=g), 1) * 1.5  # rows summing to 1.5: the exact form
    for target in (torch.randint(0, 10, (40,), generator=g), soft):
        l, G = analytic.cross_entropy(logits.detach().t().contiguous(), target)
        r = scratch.cross_entropy(logits, target)
        (grad,) = torch.autograd.grad(r.sum(), logits)
        assert torch.allclose(l, r.detach().sum(), atol=1e-4) and torch.allclose(G.t(), grad, atol=1e-6)


@pytest.mark.parametrize("loss,wd", [("squared", 0.0), ("squared", 0.05), ("huber", 0.01)])
def test_linreg_epoch_ends_at_scratch_parameters(loss, wd):
    g = torch.Generator().manual_seed(2)
    X = torch.randn(1000, 5, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5], [3.0], [0.0]]) + 4 + 0.3 * torch.randn(1000, 1, generator=g)
    ends = []
    for impl in ("scratch", "analytic"):
        net = build_net("linreg", impl, 5, seed=0)
        learner = build_learner(net, "linreg", impl, 0.03, wd, loss)
        for Xb, yb in Batches(X, y, 10, shuffle=True, seed=5):
            learner.train_step(Xb, yb)
        ends.append(net.export())
    assert torch.allclose(ends[0][0], ends[1][0], atol=1e-5) and torch.allclose(ends[0][1], ends[1][1], atol=1e-5)
    assert (ends[1][0] - ends[0][0]).abs().max() < 1e-5 < (ends[1][0] - build_net("linreg", "analytic", 5).export()[0]
                                                           ).abs().max()  # it moved, and moved as scratch did


def test_softmax_epoch_on_fashion_mnist_ends_at_scratch_parameters(fmnist):
    from linearnet.data import fashion_mnist as fm

    ends = []
    for impl in ("scratch", "analytic"):
        net = build_net("softmax", impl, 784, 10, seed=0)
        learner = build_learner(net, "softmax", impl, 0.1, 1e-4)
        for X, y in fm.batches(fmnist, "train", 256, seed=4):
            learner.train_step(X, y)
        ends.append(net.export())
    assert torch.allclose(ends[0][0], ends[1][0], atol=1e-5)
    assert torch.allclose(ends[0][1], ends[1][1], atol=1e-5)


def test_no_autograd_graph_and_no_optimizer():
    net = build_net("softmax", "analytic", 6, 3)
    learner = build_learner(net, "softmax", "analytic", 0.1)
    with torch.enable_grad():
        l, out = learner.train_step(torch.randn(8, 6), torch.randint(0, 3, (8,)))
    assert not l.requires_grad and not out.requires_grad and out.grad_fn is None
    assert all(p.grad is None and not p.requires_grad for p in net.parameters())
    assert learner.optimizer_state() == {}


def test_resume_is_bit_identical(tmp_path):
    cfg = TrainConfig.create("linreg", impl="analytic", epochs=4, checkpoint_every=1, weight_decay=0.01,
                             loss="huber", progress=False)
    full = train_run(cfg, tmp_path / "full", log=lambda s: None)
    train_run(cfg.replace(epochs=2), tmp_path / "short", log=lambda s: None)
    resumed = train_run(cfg, tmp_path / "short", resume=True, log=lambda s: None)
    assert torch.equal(resumed.model.weight, full.model.weight) and torch.equal(resumed.model.bias, full.model.bias)
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    assert max(abs(v) for v in full.metrics["w_error"]) < 0.1  # from |w| ~ 4 at the start


def test_divergence_is_detected(cli, tmp_path):
    code, _, err = cli("train", "linreg", "--impl", "analytic", "--lr", "1e6", "--out", tmp_path / "d",
                       "--no-progress")
    assert code == 2 and "epoch 1, step" in err and "smaller learning rate" in err


def test_cli_linreg_writes_every_output(cli, tmp_path):
    run = tmp_path / "lin"
    code, out, err = cli("train", "linreg", "--impl", "analytic", "--out", run, "--no-progress")
    assert code == 0, err
    assert "epoch 3, loss" in out and "w error" in out
    for name in ("config.json", "history.csv", "metrics.json", "model.safetensors", "loss.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["impl"] == "analytic"
    assert load_model(run).meta["impl"] == "analytic"
    assert max(abs(v) for v in json.loads((run / "metrics.json").read_text())["w_error"]) < 0.01


def test_cli_softmax_writes_every_output(cli, tmp_path, fmnist):
    run = tmp_path / "sm"
    code, out, err = cli("train", "softmax", "--impl", "analytic", "--epochs", "1", "--out", run, "--no-progress")
    assert code == 0, err
    for name in ("config.json", "history.csv", "metrics.json", "model.safetensors", "curves.png",
                 "confusion.png", "weights.png", "predictions.png"):
        assert (run / name).is_file(), name
    m = json.loads((run / "metrics.json").read_text())
    assert m["test_acc"] > 0.75 and sum(map(sum, m["confusion_matrix"])) == 10000
    code, out, err = cli("evaluate", run)
    assert code == 0, err


def test_two_ranks_equal_one_process(tmp_path):
    from test_distributed import torchrun

    args = ["--num-examples", "5000", "--epochs", "3", "--batch-size", "100", "--lr", "0.01", "--weight-decay",
            "0.01", "--loss", "huber", "--no-progress"]
    torchrun("-m", "linearnet", "train", "linreg", "--impl", "analytic", *args, "--out", tmp_path / "ddp")
    single = train_run(TrainConfig.create("linreg", impl="analytic", num_examples=5000, epochs=3, batch_size=100,
                                          lr=0.01, weight_decay=0.01, loss="huber", progress=False),
                       tmp_path / "one", log=lambda s: None)
    ddp = load_model(tmp_path / "ddp")
    assert torch.allclose(ddp.weight, single.model.weight, atol=1e-5)
    assert torch.allclose(ddp.bias, single.model.bias, atol=1e-5)
    assert (ddp.weight - build_net("linreg", "analytic", 2).export()[0]).abs().max() > 0.3  # it trained


def test_softmax_two_ranks_equal_one_process(tmp_path, fmnist):
    from test_distributed import torchrun

    torchrun("-m", "linearnet", "train", "softmax", "--impl", "analytic", "--epochs", "1", "--no-progress",
             "--out", tmp_path / "ddp")
    single = train_run(TrainConfig.create("softmax", impl="analytic", epochs=1, progress=False), tmp_path / "one",
                       log=lambda s: None, write_figures=False)
    ddp = load_model(tmp_path / "ddp")
    assert torch.allclose(ddp.weight, single.model.weight, atol=1e-5)
    assert torch.allclose(ddp.bias, single.model.bias, atol=1e-5)



def test_chapter_shows_the_third_way_beside_the_other_two(tmp_path):
    from linearnet.chapter import format_table, run_chapter

    rows = run_chapter(tmp_path, softmax=False, log=lambda s: None)
    names = [r["experiment"] for r in rows]
    assert names == ["linreg scratch", "linreg concise", "linreg analytic", "linreg closed-form"]
    by = {r["experiment"]: r for r in rows}
    assert by["linreg analytic"]["ours_w_err"] < 0.002  # the chapter's run recovers w as scratch does
    assert abs(by["linreg analytic"]["ours_loss"] - by["linreg scratch"]["ours_loss"]) < 1e-6
    assert "linreg analytic" in format_table(rows)
    assert (tmp_path / "linreg-analytic" / "model.safetensors").is_file()
