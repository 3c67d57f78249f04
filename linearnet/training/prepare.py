"""Turn a :class:`TrainConfig` into ready-to-train batch sources, whatever the data is."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import TrainConfig
from ..data import Batches, Standardizer, load_csv, synthetic_regression, train_val_split
from ..data import fashion_mnist as fm
from ..data.tabular import is_number
from ..errors import ConfigError

EVAL_BATCH = 10_000  # evaluation batch size: results do not depend on it; fewer, larger batches are faster


@dataclass
class PreparedData:
    """Batch sources plus everything needed to describe, save and later apply the model."""

    task: str                                   # "regression" or "classification"
    train: Batches
    evals: dict[str, Batches]
    num_inputs: int
    num_outputs: int
    X_train: torch.Tensor | None = None         # model-ready training inputs (regression; closed form)
    y_train: torch.Tensor | None = None
    feature_names: list[str] | None = None
    classes: list[str] | None = None
    x_scaler: Standardizer | None = None
    y_scaler: Standardizer | None = None
    image: dict | None = None                   # {"side", "resize", "mean", "std"} for image data
    dataset: fm.FashionMNIST | None = None
    source: str = ""
    load_seconds: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def batch_generators(self) -> dict[str, torch.Generator]:
        return {"train": self.train.generator}


def resolve_device(device: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without it is a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA device is available; use --device cpu.")
    return torch.device(device)


def prepare(config: TrainConfig, rank: int = 0, world_size: int = 1, data_env: str | None = None,
            log: Callable[[str], None] = print) -> PreparedData:
    """Load and split the data named by ``config`` and wrap it in batch sources."""
    start = time.perf_counter()
    device = resolve_device(config.device)
    common = {"device": device, "rank": rank, "world_size": world_size}
    if config.data == "fashion-mnist":
        prepared = _fashion_mnist(config, common, data_env, log)
    elif config.data == "synthetic":
        prepared = _synthetic(config, common)
    elif config.stream:  # SGD beyond memory: chunks through a shuffle buffer, never the whole table
        from ..scale.sgd_stream import prepare_stream

        prepared = prepare_stream(config, common, EVAL_BATCH)
    else:
        prepared = _csv(config, common)
    prepared.load_seconds = time.perf_counter() - start
    return prepared


def _synthetic(config: TrainConfig, common: dict) -> PreparedData:
    if config.model != "linreg":
        raise ConfigError("synthetic data is a regression problem; use --data fashion-mnist or a CSV for softmax.")
    X, y = synthetic_regression(config.true_w, config.true_b, config.num_examples, config.noise, seed=config.seed)
    tr, va = train_val_split(len(X), config.resolved_val_fraction, config.seed)
    X_tr, y_tr = X[tr], y[tr]
    train = Batches(X_tr, y_tr, config.batch_size, shuffle=True, seed=config.seed + 1, **common)
    evals = {"train_eval": Batches(X_tr, y_tr, EVAL_BATCH, **common)}
    if len(va):
        evals["val"] = Batches(X[va], y[va], EVAL_BATCH, **common)
    return PreparedData("regression", train, evals, X.shape[1], 1, X_tr, y_tr,
                        feature_names=[f"x{i}" for i in range(X.shape[1])], source="synthetic",
                        info={"true_w": list(config.true_w), "true_b": config.true_b})


def _csv(config: TrainConfig, common: dict) -> PreparedData:
    if config.target is None:
        raise ConfigError(f"--target is required with a CSV file ({config.data}); name the column to predict.")
    if Path(config.data).is_dir():
        raise ConfigError(f"{config.data} is a folder; train on a folder of files with --stream (or the closed "
                          "form, --impl closed-form), or give one table file.")
    task = "regression" if config.model == "linreg" else "classification"
    table = load_csv(config.data, config.target, config.features, task=task)
    if task == "classification":
        _check_classes(config, table.classes)
    tr, va = train_val_split(len(table.X), config.resolved_val_fraction, config.seed)
    _check_split(config, table, tr, task)
    X_tr, y_tr = table.X[tr], table.y[tr]
    x_scaler = Standardizer.fit(X_tr) if config.standardize else None
    y_scaler = Standardizer.fit(y_tr) if config.standardize and task == "regression" else None
    # The closed form stays float64 end to end; SGD trains in float32 on the (standardized) values.
    dtype = torch.float64 if config.impl == "closed-form" else torch.float32
    if dtype == torch.float32 and not config.standardize:
        _check_float32_range(config, table)

    def tx(X):
        return (x_scaler.transform(X) if x_scaler else X).to(dtype)

    def ty(y):
        y = y_scaler.transform(y) if y_scaler else y
        return y.to(dtype) if task == "regression" else y

    X_train, y_train = tx(X_tr), ty(y_tr)
    train = Batches(X_train, y_train, config.batch_size, shuffle=True, seed=config.seed + 1, **common)
    evals = {}
    if config.val_data is not None:  # a separate validation table, read with the training table's classes
        val = load_csv(config.val_data, config.target, table.feature_names, task=task, classes=table.classes)
        evals["val"] = Batches(tx(val.X), ty(val.y), EVAL_BATCH, **common)
    elif len(va):
        evals["val"] = Batches(tx(table.X[va]), ty(table.y[va]), EVAL_BATCH, **common)
    else:
        evals["train_eval"] = Batches(X_train, y_train, EVAL_BATCH, **common)
    k = 1 if task == "regression" else len(table.classes)
    return PreparedData(task, train, evals, table.X.shape[1], k, X_train, y_train,
                        feature_names=table.feature_names, classes=table.classes, x_scaler=x_scaler,
                        y_scaler=y_scaler, source=str(config.data),
                        info={"rows": len(table.X), "train_rows": len(tr), "val_rows": len(va)})


MANY_CLASSES = 20  # more distinct non-integer numeric labels than this look like a continuous target


def _check_classes(config: TrainConfig, classes: list[str]) -> None:
    if len(classes) < 2:
        raise ConfigError(f"{config.data}: the target {config.target!r} has a single class; classification "
                          "needs at least two.")
    numeric = all(is_number(c) for c in classes)
    fractional = numeric and any(not float(c).is_integer() for c in classes)
    if fractional and len(classes) > MANY_CLASSES and not config.allow_many_classes:
        raise ConfigError(f"{config.data}: the target {config.target!r} holds {len(classes)} distinct fractional "
                          "numbers, which looks continuous; use 'train linreg', or pass --allow-many-classes to "
                          "treat each value as a class.")


def _check_split(config: TrainConfig, table, tr: torch.Tensor, task: str) -> None:
    """Checks that only make sense after the split: enough training rows (and classes) to fit on."""
    d = table.X.shape[1]
    if task == "regression" and len(tr) <= d:
        raise ConfigError(f"{config.data}: {len(tr)} training rows after the validation split for {d} features; "
                          "a linear model needs more rows than features: lower --val-fraction or add rows.")
    if task == "classification" and len(torch.unique(table.y[tr])) < 2:
        raise ConfigError(f"{config.data}: the training rows after the validation split hold a single class; "
                          "lower --val-fraction or add rows.")


def _check_float32_range(config: TrainConfig, table) -> None:
    """Unstandardized SGD trains in float32: refuse a value that float32 cannot hold, naming it."""
    limit = torch.finfo(torch.float32).max
    for name, M, names in (("feature", table.X, table.feature_names), ("target", table.y, [config.target])):
        if M is None or not M.is_floating_point():
            continue
        bad = M.abs() > limit
        if bool(bad.any()):
            i, j = (int(v) for v in bad.nonzero()[0])
            raise ConfigError(f"{config.data}: data row {i + 1}, {name} {names[j]!r} is {float(M[i, j]):.3g}, "
                              "beyond float32's range; standardize the data (drop --no-standardize) or rescale "
                              "that column.")


def _fashion_mnist(config: TrainConfig, common: dict, data_env: str | None, log) -> PreparedData:
    if config.model != "softmax":
        raise ConfigError("Fashion-MNIST is a classification data set; train it with 'linearnet train softmax'.")
    ds = fm.load_fashion_mnist(root=config.data_dir, env_dir=data_env, allow_download=config.allow_download,
                               progress=config.progress, log=log)
    X_all, y_all = ds.train_images, ds.train_labels
    tr, va = train_val_split(len(X_all), config.resolved_val_fraction, config.seed)
    if len(va):
        X_tr, y_tr = X_all[tr], y_all[tr]
    else:
        X_tr, y_tr = X_all, y_all
    stats = fm.pixel_stats(X_tr) if config.normalize else None
    transform = fm.ImageTransform(config.resize, *(stats or (None, None)))
    train = Batches(X_tr, y_tr, config.batch_size, shuffle=True, seed=config.seed + 1, transform=transform,
                    **common)
    evals = {}
    if len(va):
        evals["val"] = Batches(X_all[va], y_all[va], EVAL_BATCH, transform=transform, **common)
    evals["test"] = Batches(ds.test_images, ds.test_labels, EVAL_BATCH, transform=transform, **common)
    side = config.resize or ds.train_images.shape[-1]
    image = {"side": side, "resize": config.resize, "mean": stats[0] if stats else None,
             "std": stats[1] if stats else None}
    return PreparedData("classification", train, evals, side * side, 10, classes=list(fm.TEXT_LABELS),
                        image=image, dataset=ds, source=ds.source,
                        info={"train_rows": len(X_tr), "val_rows": len(va), "test_rows": len(ds.test_images)})
