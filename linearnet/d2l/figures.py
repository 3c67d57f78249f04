"""Where the d2l figures go: inline (updated in place) in Jupyter, else numbered PNGs under ``figure_dir``.

Every figure a listing draws gets its own file, numbered in drawing order (``001-plot.png``,
``002-images.png``, ...), including figures drawn through ``d2l.plt`` directly: those are saved when
the next d2l figure is drawn and again when the process exits, so later drawings never overwrite them.
"""

from __future__ import annotations

import atexit
import sys
import weakref
from pathlib import Path

import matplotlib

from ..evaluation.live import in_jupyter

JUPYTER = in_jupyter()
if not JUPYTER:
    matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (backend chosen first)
from matplotlib.figure import Figure  # noqa: E402

_paths: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # figure -> its numbered file
_counters: dict[str, int] = {}  # figure directory -> last number used in this process
_closing: list = []  # callables run before the exit sweep (boards flush their last points)


def figure_dir() -> Path:
    """The package's ``d2l.figure_dir`` (users set it there)."""
    return Path(sys.modules[__package__].figure_dir)


def claim(fig: Figure, kind: str) -> Path:
    """The numbered file of ``fig``, given the next number the first time it is asked for."""
    if fig not in _paths:
        folder = figure_dir()
        key = str(folder.resolve())
        _counters[key] = _counters.get(key, 0) + 1
        _paths[fig] = folder / f"{_counters[key]:03d}-{kind}.png"
    return _paths[fig]


def _write(fig: Figure, kind: str) -> None:
    from ..evaluation.plots import save_figure

    new = fig not in _paths
    path = claim(fig, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)
    if new:
        print(f"[d2l] figure written to {path}")


def sweep(skip: Figure | None = None, again: bool = False) -> None:
    """Save the pyplot figures no d2l function drew (``d2l.plt.scatter(...)``): new ones get the next
    number; ``again`` re-saves those already numbered (their final state, at exit)."""
    if JUPYTER:
        return
    from matplotlib._pylab_helpers import Gcf

    for manager in Gcf.get_all_fig_managers():
        fig = manager.canvas.figure
        if fig is skip or getattr(fig, "_d2l_kind", None) is not None or not fig.get_axes():
            continue
        if again or fig not in _paths:
            _write(fig, "figure")


def current_axes():
    """``plt.gca()``, but on a new figure when the current one was already written out, so that a new
    drawing does not land on a finished figure (in Jupyter each cell starts a new figure anyway)."""
    if not JUPYTER and plt.get_fignums() and plt.gcf() in _paths:
        plt.figure()
    return plt.gca()


def show(fig: Figure, kind: str) -> None:
    """Headless: write ``fig`` to its numbered PNG (earlier direct pyplot figures first). Jupyter: nothing,
    the inline backend shows pyplot figures at the end of the cell."""
    if JUPYTER:
        return
    sweep(skip=fig)
    fig._d2l_kind = kind
    _write(fig, kind)


class LiveDisplay:
    """One output that successive versions of a figure replace: a display handle in Jupyter (the figure
    is taken out of pyplot so the cell does not show it a second time), its numbered PNG elsewhere."""

    def __init__(self, fig: Figure, kind: str) -> None:
        self.fig, self.kind, self.handle, self.cell = fig, kind, None, None
        fig._d2l_kind = kind
        if JUPYTER:
            plt.close(fig)

    def update(self) -> None:
        if not JUPYTER:
            show(self.fig, self.kind)
            return
        from IPython import display, get_ipython

        cell = get_ipython().execution_count
        if self.handle is None or cell != self.cell:  # a later cell drawing on it gets its own output
            self.handle, self.cell = display.display(self.fig, display_id=True), cell
        else:
            self.handle.update(self.fig)


def at_exit(fn) -> None:
    """Run ``fn`` before the final sweep (a board drawing its last points)."""
    _closing.append(fn)


def _final() -> None:
    for fn in _closing:
        try:
            fn()
        except Exception:  # noqa: BLE001 - exit must not fail on a figure
            pass
    try:
        sweep(again=True)
    except Exception:  # noqa: BLE001
        pass


atexit.register(_final)
