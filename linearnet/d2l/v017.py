"""The Chinese edition's d2l 0.17 function API (``train_ch3``, ``sgd``, ``load_data_fashion_mnist``, ...).

Built on linearnet's own parts; it differs from the book on purpose where the book's behaviour is
unhelpful: outside Jupyter each figure is written to its own numbered PNG (see :mod:`.figures`);
``load_data_fashion_mnist`` serves the verified in-memory data set instead of re-decoding every image;
``train_ch3`` explains a failed sanity check in a sentence and keeps its history in
``train_ch3.history`` (it returns nothing, as the book's does).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ..data import fashion_mnist as _fm
from ..data.batches import load_array
from ..data.synthetic import synthetic_regression
from ..models.scratch import linreg, sgd, squared_loss  # sgd: the book's update, zeroing grads
from .common import (
    fashion_mnist_data,
    get_fashion_mnist_labels,
    set_axes,
    show_images,
    use_svg_display,
)
from .figures import LiveDisplay, plt

# The shared plotting helpers (plot, show_images, ...) live in .common; these are this edition's own names.
__all__ = ["synthetic_data", "linreg", "squared_loss", "sgd", "load_array", "Timer", "get_dataloader_workers",
           "load_data_fashion_mnist", "Accumulator", "accuracy", "evaluate_accuracy", "train_epoch_ch3",
           "Animator", "train_ch3", "predict_ch3", "TrainingCheckError"]


# ----- linear regression ----------------------------------------------------------------------------
def synthetic_data(w, b, num_examples):
    """Generate y = Xw + b + noise (the book's signature; uses torch's global RNG)."""
    return synthetic_regression(w, float(b), num_examples, noise=0.01, seed=None)


class Timer:
    """Record multiple running times."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.perf_counter()

    def stop(self):
        self.times.append(time.perf_counter() - self.tik)
        return self.times[-1]

    def avg(self):
        return sum(self.times) / len(self.times)

    def sum(self):
        return sum(self.times)

    def cumsum(self):
        return np.array(self.times).cumsum().tolist()


# ----- Fashion-MNIST ------------------------------------------------------------------------------
def get_dataloader_workers():
    """The book uses 4 worker processes; the in-memory batches here need none."""
    return 4


def load_data_fashion_mnist(batch_size, resize=None):
    """Train and test iterables of ``(B, 1, R, R)`` float32 in [0, 1] and ``(B,)`` int64 batches."""
    ds = fashion_mnist_data()
    seed = int(torch.randint(0, 2**62, (1,)))
    return (_fm.batches(ds, "train", batch_size, shuffle=True, seed=seed, resize=resize),
            _fm.batches(ds, "test", batch_size, shuffle=False, resize=resize))


# ----- training -----------------------------------------------------------------------------------
class Accumulator:
    """Sum over n variables."""

    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


def accuracy(y_hat, y):
    """The number of correct predictions."""
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.type(y.dtype) == y
    return float(cmp.type(y.dtype).sum())


def evaluate_accuracy(net, data_iter):
    """Accuracy of ``net`` on a data set."""
    if isinstance(net, nn.Module):
        net.eval()
    metric = Accumulator(2)
    with torch.no_grad():
        for X, y in data_iter:
            metric.add(accuracy(net(X), y), y.numel())
    return metric[0] / metric[1]


def train_epoch_ch3(net, train_iter, loss, updater):
    """Train one epoch; returns (mean loss, accuracy) (the book's sum/mean conventions)."""
    if isinstance(net, nn.Module):
        net.train()
    metric = Accumulator(3)
    for X, y in train_iter:
        y_hat = net(X)
        l = loss(y_hat, y)
        if isinstance(updater, torch.optim.Optimizer):
            updater.zero_grad()
            l.mean().backward()
            updater.step()
        else:
            l.sum().backward()
            updater(X.shape[0])
        metric.add(float(l.detach().sum()), accuracy(y_hat.detach(), y), y.numel())
    return metric[0] / metric[2], metric[1] / metric[2]


class Animator:
    """Plot data incrementally: in place in Jupyter, rewritten to a PNG elsewhere."""

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, xscale="linear",
                 yscale="linear", fmts=("-", "m--", "g-.", "r:"), nrows=1, ncols=1, figsize=(3.5, 2.5)):
        if legend is None:
            legend = []
        use_svg_display()
        self.fig, self.axes = plt.subplots(nrows, ncols, figsize=figsize)
        if nrows * ncols == 1:
            self.axes = [self.axes]
        self.config_axes = lambda: set_axes(self.axes[0], xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
        self.X, self.Y, self.fmts = None, None, fmts
        self.display = LiveDisplay(self.fig, "animator")  # one output, updated in place

    def add(self, x, y):
        if not hasattr(y, "__len__"):
            y = [y]
        n = len(y)
        if not hasattr(x, "__len__"):
            x = [x] * n
        if not self.X:
            self.X = [[] for _ in range(n)]
        if not self.Y:
            self.Y = [[] for _ in range(n)]
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(a)
                self.Y[i].append(b)
        self.axes[0].cla()
        for xs, ys, fmt in zip(self.X, self.Y, self.fmts):
            self.axes[0].plot(xs, ys, fmt)
        self.config_axes()
        self.display.update()


class TrainingCheckError(AssertionError):
    """``train_ch3``'s sanity check failed (an AssertionError, as the book's bare asserts were)."""


def train_ch3(net, train_iter, test_iter, loss, num_epochs, updater):
    """Train ``net`` and plot loss and accuracies per epoch.

    Returns nothing (as the book's); the per-epoch history is kept in ``train_ch3.history``.
    """
    animator = Animator(xlabel="epoch", xlim=[1, num_epochs], ylim=[0.3, 0.9],
                        legend=["train loss", "train acc", "test acc"])
    history = train_ch3.history = []
    for epoch in range(num_epochs):
        train_metrics = train_epoch_ch3(net, train_iter, loss, updater)
        test_acc = evaluate_accuracy(net, test_iter)
        animator.add(epoch + 1, train_metrics + (test_acc,))
        history.append({"epoch": epoch + 1, "train_loss": train_metrics[0], "train_acc": train_metrics[1],
                        "test_acc": test_acc})
    train_loss, train_acc = train_metrics
    if not train_loss < 0.5:
        raise TrainingCheckError(f"train loss {train_loss:.4f} after {num_epochs} epochs is not below 0.5; "
                                 "train longer or check the learning rate and the loss.")
    if not 0.7 < train_acc <= 1:
        raise TrainingCheckError(f"train accuracy {train_acc:.4f} is not in (0.7, 1]; the model is not learning.")
    if not 0.7 < test_acc <= 1:
        raise TrainingCheckError(f"test accuracy {test_acc:.4f} is not in (0.7, 1]; the model does not generalise.")


train_ch3.history = []  # the last call's history: one dict per epoch


def predict_ch3(net, test_iter, n=6):
    """Show n test images titled with true and predicted labels (any resize, any device)."""
    X, y = next(iter(test_iter))
    trues = get_fashion_mnist_labels(y)
    preds = get_fashion_mnist_labels(net(X).argmax(axis=1))
    titles = [true + "\n" + pred for true, pred in zip(trues, preds)]
    h, w = X.shape[-2:]
    show_images(X[0:n].reshape((n, h, w)), 1, n, titles=titles[0:n])
