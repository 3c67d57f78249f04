"""Linear regression: scratch vs hand formulas vs torch, scratch vs concise, closed form vs lstsq."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from linearnet import TrainConfig, data_iter, least_squares, synthetic_regression, train_run
from linearnet.data import Batches, load_array
from linearnet.models import build_learner, build_net, concise, scratch
from linearnet.models.closed_form import SingularDesignWarning
from linearnet.training import fit


def test_synthetic_data_follows_the_model():
    X, y = synthetic_regression([2, -3.4], 4.2, 1000, noise=0.0, seed=3)
    assert X.shape == (1000, 2) and y.shape == (1000, 1)
    assert torch.allclose(y, X @ torch.tensor([[2.0], [-3.4]]) + 4.2, atol=1e-5)
    X2, y2 = synthetic_regression([2, -3.4], 4.2, 1000, noise=0.01, seed=3)
    assert 0.008 < float((y2 - y).std()) < 0.012


def test_squared_loss_gradient_matches_hand_formula_and_autograd():
    torch.manual_seed(0)
    X, y = torch.randn(7, 3), torch.randn(7, 1)
    w = torch.randn(3, 1, requires_grad=True)
    b = torch.randn(1, requires_grad=True)
    scratch.squared_loss(scratch.linreg(X, w, b), y).sum().backward()
    r = (X @ w + b - y).detach()
    # d/dw sum (xw + b - y)^2 / 2 = X^T r ; d/db = sum r  (the chapter's update rule)
    assert torch.allclose(w.grad, X.t() @ r, atol=1e-6)
    assert torch.allclose(b.grad, r.sum(0), atol=1e-6)
    w2, b2 = w.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    (nn.functional.mse_loss(X @ w2 + b2, y, reduction="sum") / 2).backward()
    assert torch.allclose(w.grad, w2.grad, atol=1e-6) and torch.allclose(b.grad, b2.grad, atol=1e-6)


def test_huber_matches_torch():
    y_hat, y = torch.linspace(-3, 3, 13).reshape(-1, 1), torch.zeros(13, 1)
    for delta in (0.5, 1.0, 2.0):
        ref = nn.HuberLoss(reduction="none", delta=delta)(y_hat, y)
        assert torch.allclose(scratch.huber_loss(y_hat, y, delta), ref)


def test_sgd_divides_by_actual_batch_size_and_zeroes_grads():
    p = torch.ones(2, 2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    (p.sum() * 3 + b.sum() * 3).backward()  # grads are 3 everywhere
    scratch.sgd([p, b], lr=0.5, batch_size=3, weight_decay=0.1)
    assert torch.allclose(p, torch.full((2, 2), 1 - 0.5 * (1 + 0.1)))  # decay on the matrix
    assert torch.allclose(b, torch.full((2,), 0.5))                    # no decay on the bias
    assert float(p.grad.abs().sum()) == 0 and float(b.grad.abs().sum()) == 0


@pytest.mark.parametrize("n,batch", [(1000, 10), (103, 10), (7, 3), (5, 8)])
def test_data_iter_and_batches_yield_every_example_once(n, batch):
    X = torch.arange(n).reshape(-1, 1)
    seen = torch.cat([xb.reshape(-1) for xb, _ in data_iter(batch, X, X.clone())])
    assert sorted(seen.tolist()) == list(range(n))
    sizes = [len(xb) for xb, _ in Batches(X, X, batch, shuffle=True, seed=1)]
    assert sum(sizes) == n and all(s == batch for s in sizes[:-1]) and 0 < sizes[-1] <= batch
    seen = torch.cat([xb.reshape(-1) for xb, _ in Batches(X, X, batch, shuffle=True, seed=1)])
    assert sorted(seen.tolist()) == list(range(n))
    seen = torch.cat([xb.reshape(-1) for xb, _ in load_array((X, X), batch)])
    assert sorted(seen.tolist()) == list(range(n))


def test_batches_shuffle_differs_between_epochs_and_is_seeded():
    X = torch.arange(50).reshape(-1, 1)
    a = Batches(X, X, 50, shuffle=True, seed=0)
    e1, e2 = next(iter(a))[0], next(iter(a))[0]
    assert not torch.equal(e1, e2)
    assert torch.equal(e1, next(iter(Batches(X, X, 50, shuffle=True, seed=0)))[0])


def _trajectory(impl: str, lr: float, loss: str = "squared", wd: float = 0.0):
    X, y = synthetic_regression([2, -3.4], 4.2, 250, seed=0)
    net = build_net("linreg", impl, 2, seed=5)
    learner = build_learner(net, "linreg", impl, lr, wd, loss)
    params = []
    for Xb, yb in Batches(X, y, 16, shuffle=True, seed=9):
        learner.train_step(Xb, yb)
        params.append(torch.cat([t.reshape(-1) for t in net.export()]))
    return torch.stack(params)


@pytest.mark.parametrize("loss,wd", [("squared", 0.0), ("squared", 0.05), ("huber", 0.0)])
def test_scratch_and_concise_follow_identical_trajectories(loss, wd):
    # MSELoss = 2 x squared_loss, so concise at lr/2 takes the scratch steps; Huber is identical.
    lr = 0.03
    concise_lr = lr / 2 if loss == "squared" else lr
    concise_wd = wd * 2 if loss == "squared" else wd  # the decay term is scaled by lr too
    a = _trajectory("scratch", lr, loss, wd)
    b = _trajectory("concise", concise_lr, loss, concise_wd)
    assert a.shape[0] == 16
    assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("impl", ["scratch", "concise"])
def test_chapter_hyperparameters_recover_w_and_b(impl, tmp_path):
    r = train_run(TrainConfig.create("linreg", impl=impl, progress=False), tmp_path / impl, log=lambda s: None)
    assert max(abs(v) for v in r.metrics["w_error"]) < 1e-3
    assert abs(r.metrics["b_error"]) < 1e-3
    assert [rec["epoch"] for rec in r.history] == [1, 2, 3]
    assert r.history[-1]["train_eval_loss"] < 1e-4


def test_seeded_runs_are_bit_identical(tmp_path):
    cfg = TrainConfig.create("linreg", progress=False)
    a = train_run(cfg, tmp_path / "a", log=lambda s: None)
    b = train_run(cfg, tmp_path / "b", log=lambda s: None)
    assert torch.equal(a.model.weight, b.model.weight) and torch.equal(a.model.bias, b.model.bias)
    import csv

    def rows(name):  # every column of every epoch but the wall-clock seconds
        with open(tmp_path / name / "history.csv") as fh:
            return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]

    assert len(rows("a")) == 3 and rows("a") == rows("b")


def test_closed_form_matches_lstsq_and_recovers_noiseless_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6)) * rng.uniform(0.1, 100, 6) + rng.normal(0, 50, 6)
    y = X @ rng.normal(size=6) + 3.0 + rng.normal(0, 0.1, 500)
    sol = least_squares(torch.from_numpy(X), torch.from_numpy(y))
    A = np.hstack([X, np.ones((500, 1))])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    assert sol.method == "cholesky"
    assert np.allclose(sol.weight.numpy().ravel(), ref[:-1], rtol=1e-10, atol=1e-10)
    assert abs(float(sol.bias[0]) - ref[-1]) < 1e-10 * max(1, abs(ref[-1]))
    Xn, yn = synthetic_regression([2, -3.4, 0.5], 4.2, 200, noise=0.0, seed=1, dtype=torch.float64)
    exact = least_squares(Xn, yn)
    assert torch.allclose(exact.weight.reshape(-1), torch.tensor([2, -3.4, 0.5], dtype=torch.float64), atol=1e-12)
    assert abs(float(exact.bias[0]) - 4.2) < 1e-12


def test_closed_form_ill_conditioned_falls_back_to_qr():
    rng = np.random.default_rng(2)
    U, _ = np.linalg.qr(rng.normal(size=(400, 5)))
    V, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    X = U @ np.diag(np.logspace(0, -10, 5)) @ V.T  # condition number 1e10
    y = X @ rng.normal(size=5) + rng.normal(0, 1e-3, 400)
    sol = least_squares(torch.from_numpy(X), torch.from_numpy(y))
    assert sol.method == "qr"
    A = np.hstack([X, np.ones((400, 1))])
    ref = np.linalg.lstsq(A, y, rcond=None)[0]
    resid_ours = np.linalg.norm(X @ sol.weight.numpy().ravel() + float(sol.bias[0]) - y)
    resid_ref = np.linalg.norm(A @ ref - y)
    assert resid_ours <= resid_ref * (1 + 1e-8)


def test_singular_design_warns_and_gives_minimum_norm():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(100, 1))
    X = np.hstack([x, x, rng.normal(size=(100, 1))])  # two identical columns
    y = (3 * x[:, 0] + 2 * X[:, 2] + 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = least_squares(torch.from_numpy(X), torch.from_numpy(y))
    assert any(issubclass(w.category, SingularDesignWarning) for w in caught)
    w = sol.weight.numpy().ravel()
    assert np.allclose(w, [1.5, 1.5, 2.0], atol=1e-8)  # the weight split evenly: minimum norm
    assert abs(float(sol.bias[0]) - 1.0) < 1e-8


def test_fit_history_is_plain_records():
    X, y = synthetic_regression([1.0], 0.5, 64, seed=0)
    net = build_net("linreg", "concise", 1)
    hist = fit(build_learner(net, "linreg", "concise", 0.1), Batches(X, y, 8, shuffle=True), 2,
               eval_sets={"all": Batches(X, y, 64)})
    assert [sorted(r) for r in hist] == [["all_loss", "epoch", "lr", "seconds", "train_loss"]] * 2
    assert hist[1]["all_loss"] < hist[0]["all_loss"]
    y_hat, y_true = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([[0.5], [2.0], [1.0]])
    mse = float(concise.squared_loss()(y_hat, y_true))  # nn.MSELoss: twice the chapter's halved loss
    assert mse == pytest.approx((0.25 + 0 + 9) / 3) == 2 * float(scratch.squared_loss(y_hat, y_true).mean())
