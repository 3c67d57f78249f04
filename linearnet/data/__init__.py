"""Data: synthetic regression data, minibatch iterators, CSV tables and Fashion-MNIST."""

from .batches import Batches, data_iter, load_array
from .split import train_val_split
from .synthetic import synthetic_regression
from .tabular import Standardizer, Table, load_csv

__all__ = ["Batches", "data_iter", "load_array", "train_val_split", "synthetic_regression",
           "Standardizer", "Table", "load_csv"]
