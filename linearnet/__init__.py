"""linearnet: linear regression and softmax regression, from scratch and concise, correct and fast.

The chapter "Linear neural networks" of *Dive into Deep Learning* as a library and a CLI. The
main entry points are re-exported here; ``from linearnet import d2l`` gives the book's helper names.
The re-exports load on first use (PEP 562), so ``import linearnet`` and ``linearnet --help`` do not
pay for torch and matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# name -> the submodule that defines it
_EXPORTS = {
    "TrainConfig": ".config",
    "Batches": ".data", "data_iter": ".data", "load_array": ".data", "load_csv": ".data",
    "synthetic_regression": ".data", "train_val_split": ".data",
    "ConfigError": ".errors", "DataError": ".errors", "DivergenceError": ".errors", "LinearNetError": ".errors",
    "ModelFileError": ".errors",
    "least_squares": ".models",
    "fit": ".training", "run_epoch": ".training", "train_run": ".training",
}

__all__ = ["TrainConfig", "Batches", "data_iter", "load_array", "load_csv", "synthetic_regression",
           "train_val_split", "ConfigError", "DataError", "DivergenceError", "LinearNetError",
           "ModelFileError", "least_squares", "fit", "run_epoch", "train_run", "__version__"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from .config import TrainConfig
    from .data import Batches, data_iter, load_array, load_csv, synthetic_regression, train_val_split
    from .errors import ConfigError, DataError, DivergenceError, LinearNetError, ModelFileError
    from .models import least_squares
    from .training import fit, run_epoch, train_run


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    # ``from linearnet import d2l`` / ``linearnet.sklearn`` load lazily: they pull in optional pieces.
    if name in ("d2l", "sklearn"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'linearnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, "d2l", "sklearn"])
