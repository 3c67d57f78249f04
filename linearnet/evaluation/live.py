"""The live training view: in Jupyter the curves redraw in place; elsewhere a PNG is rewritten.

Drawing a figure costs about 0.1 s, as much as an epoch of softmax regression, so the view is
redrawn at most once per ``min_interval`` seconds, and always for the final state.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure

from .plots import save_figure


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (where inline display works).

    A kernel has imported IPython long before any of our code runs, so a process that has not is no
    kernel: the check never imports IPython itself (0.1 s of a command-line run).
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LiveFigure:
    """Shows successive versions of a figure: in place in Jupyter, else by rewriting ``path``.

    ``show`` takes a function that builds the figure, called only when a redraw is due:
    ``min_interval`` seconds after the last redraw (in a file, the first ``min_interval`` seconds after
    creation, so a run shorter than that draws once, at the end; in Jupyter, the first call at once),
    or ``final=True``. ``drew_final`` tells
    whether the last version shown is the final one (so the caller need not draw it again).
    """

    def __init__(self, path: str | Path | None, announce=print, min_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path) if path is not None else None
        self.jupyter = in_jupyter()
        self.announce = announce
        self.min_interval = min_interval
        self.clock = clock
        self._announced = False
        # a file nobody can have opened yet is not worth a redraw: the interval counts from creation
        self._last: float | None = None if self.jupyter else clock()
        self.drew_final = False
        self.draws = 0

    def show(self, make: Callable[[], Figure] | Figure, final: bool = False) -> bool:
        """Redraw when due (see the class docstring); return whether it redrew."""
        now = self.clock()
        if not final and self._last is not None and now - self._last < self.min_interval:
            return False
        if not self.jupyter and self.path is None:
            return False
        fig = make() if callable(make) else make
        self._draw(fig)
        self._last = self.clock()
        self.drew_final = final
        self.draws += 1
        return True

    def _draw(self, fig: Figure) -> None:
        if self.jupyter:
            from IPython import display

            display.display(fig)
            display.clear_output(wait=True)
            return
        save_figure(fig, self.path)
        if not self._announced and self.announce is not None:
            where = str(self.path)
            if self.path.parent.name.endswith(".partial"):  # the run is built there, then moved into place
                final = self.path.parent.with_name(self.path.parent.name[:-len(".partial")]) / self.path.name
                where += f" while the run trains, then {final}"
            self.announce(f"live plot: {where} (redrawn at most every {self.min_interval:g} s)")
            self._announced = True
