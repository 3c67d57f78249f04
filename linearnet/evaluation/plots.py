"""Figures, drawn on matplotlib ``Figure`` objects (no pyplot state) and saved atomically as PNG."""

from __future__ import annotations

import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..io import atomic_path


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def save_figures(jobs: dict[str | Path, Callable[[], Figure]], parallel: bool = True) -> list[Path]:
    """Build and write several figures; on Linux with two or more cores, in two processes at once.

    Rendering holds the GIL, so threads do not overlap it; a forked child draws every second figure
    while this process draws the others (each figure on its own Agg canvas, written atomically, so
    the files are byte-identical to drawing them one after another). If the child fails in any way,
    its figures are drawn here, so an error surfaces as it would have without the child.
    """
    items = [(Path(path), make) for path, make in jobs.items()]
    if len(items) < 2 or not parallel or not _can_fork():
        return [save_figure(make(), path) for path, make in items]
    mine, theirs = items[0::2], items[1::2]
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # nothing buffered may be written twice
    pid = os.fork()
    if pid == 0:  # the child: draw its share, then leave at once (no interpreter teardown, no atexit)
        code = 1
        try:
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a Ctrl-C or SIGTERM ends it; the parent decides
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            for path, make in theirs:
                save_figure(make(), path)
            code = 0
        finally:
            os._exit(code)
    try:
        for path, make in mine:
            save_figure(make(), path)
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        _remove_temporaries(theirs)
        raise
    _, status = os.waitpid(pid, 0)
    if status != 0:  # the child failed or was killed: draw its figures here (an error then shows as usual)
        _remove_temporaries(theirs)
        for path, make in theirs:
            save_figure(make(), path)
    return [path for path, _ in items]


def _can_fork() -> bool:
    """Forking pays on Linux with a second core for us (elsewhere fork is unsafe or absent)."""
    return sys.platform == "linux" and hasattr(os, "fork") and len(os.sched_getaffinity(0)) > 1


def _remove_temporaries(items) -> None:
    """Temporary files a killed child left beside its figures (``atomic_path`` names them so)."""
    for path, _ in items:
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            tmp.unlink(missing_ok=True)


def _widen(lim):
    """Limits with equal ends (``xlim=[1, num_epochs]`` for one epoch) widened by half a unit each way,
    which matplotlib would otherwise do with a warning."""
    if lim is not None and lim[0] is not None and lim[0] == lim[1]:
        return (lim[0] - 0.5, lim[1] + 0.5)
    return lim


def set_axes(ax, xlabel=None, ylabel=None, xlim=None, ylim=None, xscale="linear", yscale="linear",
             legend=None) -> None:
    """Label, limit and scale an axes (the book's ``set_axes``)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    ax.set_xlim(_widen(xlim))
    ax.set_ylim(_widen(ylim))
    if legend:
        ax.legend(legend)
    ax.grid()


def _as_array(v) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def draw_lines(ax, X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
               xscale="linear", yscale="linear", fmts=("-", "m--", "g-.", "r:")) -> None:
    """Draw one or several curves on ``ax`` with the book's ``plot`` argument conventions."""
    if legend is None:
        legend = []

    def has_one_axis(v):
        return (hasattr(v, "ndim") and v.ndim == 1) or (isinstance(v, list) and not hasattr(v[0], "__len__"))

    if has_one_axis(X):
        X = [X]
    if Y is None:
        X, Y = [[]] * len(X), X
    elif has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    ax.cla()
    for x, y, fmt in zip(X, Y, fmts * (len(Y) // len(fmts) + 1)):
        if len(x):
            ax.plot(_as_array(x), _as_array(y), fmt)
        else:
            ax.plot(_as_array(y), fmt)
    set_axes(ax, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)


def line_figure(X, Y=None, figsize=(3.5, 2.5), **kwargs) -> Figure:
    """A figure with curves drawn by :func:`draw_lines`."""
    fig = Figure(figsize=figsize)
    draw_lines(fig.add_subplot(), X, Y, **kwargs)
    return fig


# history keys whose name alone would puzzle a reader of the legend
CURVE_LABELS = {"train_eval_loss": "train loss (whole set, end of epoch)"}


def history_figure(history: list[dict], keys: Sequence[str], xlabel: str = "epoch", ylabel: str | None = None,
                   yscale: str = "linear", figsize=(4.5, 3.0)) -> Figure:
    """Curves of ``keys`` over epochs from a training history (missing keys are skipped)."""
    keys = [k for k in keys if history and k in history[0]]
    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=figsize)
    ax = fig.add_subplot()
    for key, fmt in zip(keys, ("-", "m--", "g-.", "r:")):
        ax.plot(epochs, [r[key] for r in history], fmt, marker="o", markersize=3,
                label=CURVE_LABELS.get(key, key.replace("_", " ")))
    ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_yscale(yscale)
    if keys:
        ax.legend()
    ax.grid()
    if epochs:
        ax.set_xlim(min(epochs) - 0.1 if len(epochs) == 1 else min(epochs), max(epochs) + 0.1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no ticks at 1.5, 2.5, ...
    return fig


def image_grid(images, num_rows: int, num_cols: int, titles: Sequence[str] | None = None,
               scale: float = 1.5) -> Figure:
    """The chapter's ``show_images``: a grid of grayscale images with optional titles."""
    fig = Figure(figsize=(num_cols * scale, num_rows * scale + (0.4 if titles else 0)))
    axes = fig.subplots(num_rows, num_cols, squeeze=False).flatten()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= len(images):
            continue
        img = images[i]
        ax.imshow(_as_array(img).squeeze(), cmap="gray" if _as_array(img).squeeze().ndim == 2 else None)
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=8)
    return fig


def predictions_figure(images, true_names: Sequence[str], pred_names: Sequence[str]) -> Figure:
    """Test images titled with the true label over the predicted one (the chapter's ``predict_ch3``).

    Each title says which line is which ("true: ...", "pred: ..."), and a wrong prediction is marked.
    """
    n = len(images)
    titles = [f"true: {t}\npred: {p}" + ("" if t == p else " (wrong)") for t, p in zip(true_names, pred_names)]
    cols = min(n, 9)
    return image_grid(images, math.ceil(n / cols), cols, titles)


def confusion_figure(cm: torch.Tensor, names: Sequence[str]) -> Figure:
    """Confusion matrix heat map, rows true and columns predicted, with counts."""
    k = len(names)
    m = _as_array(cm)
    top = m.max() if m.size else 1
    # Cells wide enough for the largest count at a readable 10 pt (about 0.1 in a digit, plus margins).
    cell = max(0.75, 0.1 * len(str(int(top))) + 0.3)
    fig = Figure(figsize=(1.5 + cell * k, 1.2 + cell * k))
    ax = fig.add_subplot()
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=10)
    ax.set_yticks(range(k), names, fontsize=10)
    ax.set_xlabel("predicted", fontsize=11)
    ax.set_ylabel("true", fontsize=11)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=10,
                    color="white" if m[i, j] > top / 2 else "black")
    return fig


def weights_figure(weight: torch.Tensor, names: Sequence[str], side: int) -> Figure:
    """Each class's weight vector drawn as a ``side`` x ``side`` template."""
    w = _as_array(weight).reshape(len(names), side, side)
    fig = Figure(figsize=(1.5 * len(names), 1.9))
    for i, ax in enumerate(fig.subplots(1, len(names), squeeze=False)[0]):
        lim = np.abs(w[i]).max() or 1.0
        ax.imshow(w[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(names[i], fontsize=8)
        ax.axis("off")
    return fig


def normal(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """The normal density ``p(x) = exp(-(x - mu)^2 / (2 sigma^2)) / sqrt(2 pi sigma^2)``."""
    p = 1 / math.sqrt(2 * math.pi * sigma ** 2)
    return p * np.exp(-0.5 / sigma ** 2 * (x - mu) ** 2)


NORMAL_PARAMS = ((0, 1), (0, 2), (3, 1))


def normal_figure(params: Sequence[tuple[float, float]] = NORMAL_PARAMS) -> Figure:
    """The chapter's figure of three normal densities over x in [-7, 7)."""
    x = np.arange(-7, 7, 0.01)
    return line_figure(x, [normal(x, mu, sigma) for mu, sigma in params], xlabel="x", ylabel="p(x)",
                       figsize=(4.5, 2.5), legend=[f"mean {mu}, std {sigma}" for mu, sigma in params])
