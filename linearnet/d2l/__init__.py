"""``from linearnet import d2l``: the book's helper names, for both editions of *Dive into Deep Learning*.

One import serves the Chinese edition's d2l 0.17 function API (:mod:`.v017`: ``train_ch3``, ``sgd``,
``load_data_fashion_mnist``, ...) and the English edition's d2l 1.0 classes for its two linear chapters
(:mod:`.v10`: ``Module``, ``Trainer``, ``FashionMNIST``, ...); the tensor aliases and device helpers
(:mod:`.tensors`) and the plotting helpers (:mod:`.common`) are shared, and no name of one edition hides
the other's. Outside Jupyter every figure goes to its own numbered PNG under :data:`figure_dir`
(:mod:`.figures`).
"""

from __future__ import annotations

from pathlib import Path

from . import tensors, v017, v10
from .common import get_fashion_mnist_labels, plot, set_axes, set_figsize, show_images, use_svg_display  # noqa: F401 - re-exported, see SHARED
from .figures import plt  # noqa: F401
from .tensors import *  # noqa: F403 - the book's aliases (d2l.reshape, d2l.float32, ...) and device helpers
from .v017 import *  # noqa: F403
from .v10 import *  # noqa: F403

# Where figures go outside Jupyter; set ``d2l.figure_dir = "somewhere"`` to move them.
figure_dir: str | Path = "d2l_figures"

SHARED = ["get_fashion_mnist_labels", "plot", "set_axes", "set_figsize", "show_images", "use_svg_display", "plt",
          "figure_dir"]
__all__ = SHARED + tensors.__all__ + v10.__all__ + v017.__all__
