"""The Chinese edition's (d2l 0.17) listings, retold in our words, run with only the import line changed."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from linearnet import d2l


@pytest.fixture(autouse=True)
def figures_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(d2l, "figure_dir", tmp_path / "figs")
    torch.manual_seed(0)
    random.seed(0)
    yield tmp_path / "figs"
    d2l.plt.close("all")


def test_linear_regression_from_scratch_listing():
    true_w, true_b = torch.tensor([2, -3.4]), 4.2
    features, labels = d2l.synthetic_data(true_w, true_b, 1000)

    def data_iter(batch_size, features, labels):
        indices = list(range(len(features)))
        random.shuffle(indices)
        for i in range(0, len(features), batch_size):
            batch = torch.tensor(indices[i:min(i + batch_size, len(features))])
            yield features[batch], labels[batch]

    w = torch.normal(0, 0.01, size=(2, 1), requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    lr, num_epochs, batch_size = 0.03, 3, 10
    net, loss = d2l.linreg, d2l.squared_loss
    for _epoch in range(num_epochs):
        for X, y in data_iter(batch_size, features, labels):
            loss(net(X, w, b), y).sum().backward()
            d2l.sgd([w, b], lr, batch_size)
    with torch.no_grad():
        final = float(loss(net(features, w, b), labels).mean())
    assert final < 1e-4
    assert (true_w - w.reshape(true_w.shape)).abs().max() < 1e-3 and abs(true_b - float(b.detach())) < 1e-3


def test_linear_regression_concise_listing():
    true_w, true_b = torch.tensor([2, -3.4]), 4.2
    features, labels = d2l.synthetic_data(true_w, true_b, 1000)
    data_iter = d2l.load_array((features, labels), 10)
    net = nn.Sequential(nn.Linear(2, 1))
    net[0].weight.data.normal_(0, 0.01)
    net[0].bias.data.fill_(0)
    loss = nn.MSELoss()
    trainer = torch.optim.SGD(net.parameters(), lr=0.03)
    for _epoch in range(3):
        for X, y in data_iter:
            l = loss(net(X), y)
            trainer.zero_grad()
            l.backward()
            trainer.step()
    w, b = net[0].weight.data, net[0].bias.data
    # MSELoss doubles the gradient (effective lr 0.06), so constant-lr SGD settles with a spread of
    # about sqrt(0.06 * 0.01^2 / (2 * 10)) ~ 5e-4 around the optimum: allow 4 of those.
    with torch.no_grad():
        assert float(loss(net(features), labels)) < 1.3e-4
    assert (true_w - w.reshape(true_w.shape)).abs().max() < 2e-3 and abs(true_b - float(b)) < 2e-3


def test_normal_distribution_plot_listing(figures_in_tmp):
    import math

    import numpy as np

    def normal(x, mu, sigma):
        p = 1 / math.sqrt(2 * math.pi * sigma**2)
        return p * np.exp(-0.5 / sigma**2 * (x - mu)**2)

    x = np.arange(-7, 7, 0.01)
    params = [(0, 1), (0, 2), (3, 1)]
    d2l.plot(x, [normal(x, mu, sigma) for mu, sigma in params], xlabel="x", ylabel="p(x)", figsize=(4.5, 2.5),
             legend=[f"mean {mu}, std {sigma}" for mu, sigma in params])
    assert (figures_in_tmp / "001-plot.png").read_bytes()[:4] == b"\x89PNG"


def test_image_classification_dataset_listing(figures_in_tmp):
    train_iter, test_iter = d2l.load_data_fashion_mnist(18)
    X, y = next(iter(test_iter))
    d2l.show_images(X.reshape(18, 28, 28), 2, 9, titles=d2l.get_fashion_mnist_labels(y))
    assert (figures_in_tmp / "001-images.png").is_file()
    timer = d2l.Timer()
    train_iter, _ = d2l.load_data_fashion_mnist(256)
    count = sum(len(y) for _, y in train_iter)
    timer.stop()
    assert count == 60000 and len(timer.times) == 1
    train_iter, test_iter = d2l.load_data_fashion_mnist(32, resize=64)
    for X, y in train_iter:
        assert (X.shape, X.dtype, y.shape, y.dtype) == ((32, 1, 64, 64), torch.float32, (32,), torch.int64)
        break
    first = [next(iter(train_iter))[1] for _ in range(2)]
    assert not torch.equal(first[0], first[1])  # train shuffled on every pass
    assert torch.equal(next(iter(test_iter))[1], next(iter(test_iter))[1])  # test not


def test_softmax_from_scratch_listing(figures_in_tmp):
    batch_size = 256
    train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)
    num_inputs, num_outputs = 784, 10
    W = torch.normal(0, 0.01, size=(num_inputs, num_outputs), requires_grad=True)
    b = torch.zeros(num_outputs, requires_grad=True)

    def softmax(X):
        X_exp = torch.exp(X)
        return X_exp / X_exp.sum(1, keepdim=True)

    def net(X):
        return softmax(torch.matmul(X.reshape((-1, W.shape[0])), W) + b)

    def cross_entropy(y_hat, y):
        return -torch.log(y_hat[range(len(y_hat)), y])

    assert d2l.evaluate_accuracy(net, test_iter) < 0.3  # random initial weights: about chance

    def updater(batch_size):
        return d2l.sgd([W, b], 0.1, batch_size)

    assert d2l.train_ch3(net, train_iter, test_iter, cross_entropy, 10, updater) is None  # as the book's
    history = d2l.train_ch3.history
    assert len(history) == 10 and history[-1]["test_acc"] >= 0.80
    assert d2l.predict_ch3(net, test_iter) is None
    assert sorted(p.name for p in figures_in_tmp.iterdir()) == ["001-animator.png", "002-images.png"]


def test_softmax_concise_listing():
    train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def init_weights(m):
        if type(m) is nn.Linear:
            nn.init.normal_(m.weight, std=0.01)

    net.apply(init_weights)
    loss = nn.CrossEntropyLoss(reduction="none")
    trainer = torch.optim.SGD(net.parameters(), lr=0.1)
    d2l.train_ch3(net, train_iter, test_iter, loss, 10, trainer)
    assert d2l.train_ch3.history[-1]["test_acc"] >= 0.80


def test_train_ch3_failed_check_is_a_sentence():
    train_iter, test_iter = d2l.load_data_fashion_mnist(256)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    trainer = torch.optim.SGD(net.parameters(), lr=1e-7)
    with pytest.raises(d2l.TrainingCheckError, match="train loss .* is not below 0.5"):
        d2l.train_ch3(net, train_iter, test_iter, nn.CrossEntropyLoss(reduction="none"), 1, trainer)


def test_every_figure_survives_numbered_in_drawing_order(figures_in_tmp):
    """The scatter drawn through d2l.plt directly, then an image grid, then a plot: three files, none
    overwritten, the scatter saved when the next d2l figure is drawn."""
    features, labels = d2l.synthetic_data(torch.tensor([2, -3.4]), 4.2, 100)
    d2l.set_figsize()
    d2l.plt.scatter(d2l.numpy(features[:, 1]), d2l.numpy(labels), 1)
    d2l.show_images(torch.rand(2, 28, 28), 1, 2)
    d2l.show_images(torch.rand(3, 28, 28), 1, 3)
    d2l.plot(d2l.arange(0, 3, 0.1), [d2l.sin(d2l.arange(0, 3, 0.1))])
    names = sorted(p.name for p in figures_in_tmp.iterdir())
    assert names == ["001-figure.png", "002-images.png", "003-images.png", "004-plot.png"]
    assert (figures_in_tmp / "002-images.png").read_bytes() != (figures_in_tmp / "003-images.png").read_bytes()


def test_timer_and_accumulator(monkeypatch):
    clock = iter([10.0, 12.5, 20.0, 21.0])
    monkeypatch.setattr(d2l.v017.time, "perf_counter", lambda: next(clock))
    t = d2l.Timer()
    t.stop()
    t.start()
    t.stop()
    assert t.times == [2.5, 1.0] and t.sum() == 3.5 and t.avg() == 1.75 and t.cumsum() == [2.5, 3.5]
    acc = d2l.Accumulator(2)
    acc.add(1, torch.tensor(2.0))
    acc.add(3, 4)
    assert acc[0] == 4.0 and acc[1] == 6.0
    acc.reset()
    assert acc[0] == 0.0


def test_synthetic_data_has_the_chapters_noise():
    w, b = torch.tensor([2, -3.4]), 4.2
    X, y = d2l.synthetic_data(w, b, 20000)
    residual = y.reshape(-1) - (X @ w + b)
    assert abs(float(residual.std()) - 0.01) < 0.0005  # noise N(0, 0.01^2): std within 5% at n = 20000


def test_train_epoch_ch3_reports_the_mean_loss_and_accuracy():
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 2.0], [2.0, -1.0], [0.5, 0.5]])
    y = torch.tensor([0, 1, 1, 0, 1])
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        net.bias.zero_()
    loss = nn.CrossEntropyLoss(reduction="none")
    with torch.no_grad():
        expected = float(loss(net(X), y).mean())
        correct = int((net(X).argmax(1) == y).sum())  # rows 1-4 right; row 5 ties, argmax picks class 0
    frozen = torch.optim.SGD(net.parameters(), lr=0.0)
    got_loss, got_acc = d2l.train_epoch_ch3(net, [(X[:2], y[:2]), (X[2:], y[2:])], loss, frozen)
    assert got_loss == pytest.approx(expected, rel=1e-6) and got_acc == correct / 5 == 0.8


def test_predict_ch3_titles_show_the_predictions_with_resize(figures_in_tmp):
    _, test_iter = d2l.load_data_fashion_mnist(8, resize=32)
    net = nn.Sequential(nn.Flatten(), nn.Linear(32 * 32, 10))
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.arange(10.0) == 3)  # always predicts class 3, 'dress'
    assert d2l.predict_ch3(net, test_iter, n=6) is None  # as the book's: the titles are in the figure
    titles = [ax.get_title() for ax in d2l.plt.gcf().axes]
    X, y = next(iter(test_iter))
    assert X.shape == (8, 1, 32, 32)
    assert titles == [f"{t}\ndress" for t in d2l.get_fashion_mnist_labels(y[:6])]
    assert (figures_in_tmp / "001-images.png").read_bytes()[:4] == b"\x89PNG"


def test_direct_pyplot_figure_is_saved_at_exit(tmp_path):
    """A script whose only figure is the chapter's scatter through d2l.plt still leaves it as a file."""
    import subprocess
    import sys

    script = ("from linearnet import d2l\nimport torch\n"
              f"d2l.figure_dir = {str(tmp_path / 'figs')!r}\n"
              "features, labels = d2l.synthetic_data(torch.tensor([2, -3.4]), 4.2, 100)\n"
              "d2l.set_figsize()\nd2l.plt.scatter(d2l.numpy(features[:, 1]), d2l.numpy(labels), 1)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == ""
    assert [p.name for p in (tmp_path / "figs").iterdir()] == ["001-figure.png"]
