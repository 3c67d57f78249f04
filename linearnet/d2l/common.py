"""What both editions share: the book's plotting helpers and the Fashion-MNIST data, decoded once."""

from __future__ import annotations

import numpy as np
import torch

from ..data import fashion_mnist as _fm
from .figures import JUPYTER, current_axes, plt, show

get_fashion_mnist_labels = _fm.get_fashion_mnist_labels
_dataset: list[_fm.FashionMNIST] = []


# ----- plotting -----------------------------------------------------------------------------------
def use_svg_display():
    """Use SVG inline in Jupyter; a no-op elsewhere (figures go to PNG files)."""
    if JUPYTER:
        try:
            from matplotlib_inline import backend_inline

            backend_inline.set_matplotlib_formats("svg")
        except ImportError:
            pass


def set_figsize(figsize=(3.5, 2.5)):
    use_svg_display()
    plt.rcParams["figure.figsize"] = figsize


def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend):
    from ..evaluation.plots import set_axes as _set_axes

    _set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)


def plot(X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None, xscale="linear",
         yscale="linear", fmts=("-", "m--", "g-.", "r:"), figsize=(3.5, 2.5), axes=None):
    """Plot data points (the book's ``plot``); headless, the figure is written to a PNG."""
    from ..evaluation.plots import draw_lines

    set_figsize(figsize)
    axes = axes if axes else current_axes()
    draw_lines(axes, X, Y, xlabel=xlabel, ylabel=ylabel, legend=legend, xlim=xlim, ylim=ylim, xscale=xscale,
               yscale=yscale, fmts=fmts)
    show(axes.figure, "plot")


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Plot a list of images (tensors on any device, or arrays)."""
    figsize = (num_cols * scale, num_rows * scale)
    fig, axes = plt.subplots(num_rows, num_cols, figsize=figsize)
    axes = np.array(axes).flatten()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        ax.imshow(img.detach().cpu().numpy() if torch.is_tensor(img) else img)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    show(fig, "images")
    return axes


def fashion_mnist_data():
    """The verified data set, loaded on first use (and said where from)."""
    if not _dataset:
        ds = _fm.load_fashion_mnist(progress=True)
        print(f"[d2l] Fashion-MNIST from {ds.source}")
        _dataset.append(ds)
    return _dataset[0]


