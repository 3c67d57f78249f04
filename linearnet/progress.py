"""Which tqdm progress bar to use: the notebook widget only where it can draw (Jupyter with ipywidgets).

``tqdm.auto`` warns "IProgress not found" on stderr as soon as it is imported in a kernel without
ipywidgets; picking the bar here avoids that warning (the plain bar disables itself off a terminal).
"""

from __future__ import annotations

import importlib.util

from .evaluation.live import in_jupyter

if in_jupyter() and importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.notebook import tqdm
else:
    from tqdm import tqdm

__all__ = ["tqdm"]
