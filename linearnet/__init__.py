"""linearnet: linear regression and softmax regression, from scratch and concise, correct and fast.

The chapter "Linear neural networks" of *Dive into Deep Learning* as a library and a CLI. The
main entry points are re-exported here; ``from linearnet import d2l`` gives the book's helper names.
"""

from .config import TrainConfig
from .data import Batches, data_iter, load_array, load_csv, synthetic_regression, train_val_split
from .errors import ConfigError, DataError, DivergenceError, LinearNetError, ModelFileError
from .models import least_squares
from .training import fit, run_epoch, train_run

__version__ = "0.1.0"

__all__ = ["TrainConfig", "Batches", "data_iter", "load_array", "load_csv", "synthetic_regression",
           "train_val_split", "ConfigError", "DataError", "DivergenceError", "LinearNetError",
           "ModelFileError", "least_squares", "fit", "run_epoch", "train_run", "__version__"]


def __getattr__(name: str):
    # ``from linearnet import d2l`` / ``linearnet.sklearn`` load lazily: they pull in optional pieces.
    if name in ("d2l", "sklearn"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(name)
