"""The live training view: in Jupyter the curves redraw in place; elsewhere a PNG is rewritten."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from .plots import save_figure


def in_jupyter() -> bool:
    """True inside a Jupyter kernel (where inline display works)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LiveFigure:
    """Shows successive versions of a figure: in place in Jupyter, else by rewriting ``path``."""

    def __init__(self, path: str | Path | None, announce=print) -> None:
        self.path = Path(path) if path is not None else None
        self.jupyter = in_jupyter()
        self.announce = announce
        self._announced = False

    def show(self, fig: Figure) -> None:
        if self.jupyter:
            from IPython import display

            display.display(fig)
            display.clear_output(wait=True)
            return
        if self.path is None:
            return
        save_figure(fig, self.path)
        if not self._announced and self.announce is not None:
            self.announce(f"live plot: {self.path} (rewritten every epoch)")
            self._announced = True
