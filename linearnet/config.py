"""The one configuration object that flows from the CLI (or the library) into training.

Defaults that depend on the model (the chapter's hyperparameters) are filled in by
:meth:`TrainConfig.create`; ``__post_init__`` validates everything, so an invalid
configuration never reaches the training code.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

MODELS = ("linreg", "softmax")
IMPLS = {"linreg": ("scratch", "concise", "analytic", "closed-form"), "softmax": ("scratch", "concise", "analytic")}
LOSSES = ("squared", "huber")
SCHEDULES = ("constant", "cosine", "step")
DEVICES = ("cpu", "cuda", "auto")

# The chapter's hyperparameters for each model.
CHAPTER_DEFAULTS: dict[str, dict[str, Any]] = {
    "linreg": {"epochs": 3, "lr": 0.03, "batch_size": 10, "data": "synthetic"},
    "softmax": {"epochs": 10, "lr": 0.1, "batch_size": 256, "data": "fashion-mnist"},
}


# Fields that mean something for one data source only: a run on other data does not record them
# (from_dict gives them their defaults, so config files written with them still load).
ONLY_FOR: dict[str, tuple[str, ...]] = {"synthetic": ("true_w", "true_b", "num_examples", "noise"),
                                        "fashion-mnist": ("data_dir", "allow_download", "resize", "normalize")}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; see ``linearnet train --help`` for each field."""

    model: str = "linreg"                  # "linreg" or "softmax"
    impl: str = "scratch"                  # "scratch", "concise", "analytic" or "closed-form" (linreg only)
    data: str = "synthetic"                # "synthetic", "fashion-mnist", or a path to a CSV/NPY file
    target: str | None = None              # CSV: name of the target column (required for CSV)
    features: tuple[str, ...] | None = None  # CSV: feature columns; None means every other column
    standardize: bool = True               # standardize CSV features (and a regression target)
    epochs: int = 3                        # passes over the training data
    lr: float = 0.03                       # SGD learning rate (per-example-mean gradient scale)
    batch_size: int = 10                   # minibatch size (per process under torchrun: global / world)
    loss: str = "squared"                  # linreg loss: "squared" (the chapter's) or "huber"
    huber_delta: float = 1.0               # threshold of the Huber loss
    weight_decay: float = 0.0              # L2 penalty coefficient, on the weights only
    lr_schedule: str = "constant"          # "constant", "cosine" (to 0 at the end) or "step" (x0.1 at 2/3)
    val_fraction: float | None = None      # validation share carved from training data; None: model default
    resize: int | None = None              # Fashion-MNIST: resize images to R x R (bilinear, antialiased)
    normalize: bool = False                # Fashion-MNIST: standardize pixels with the training mean/std
    device: str = "cpu"                    # "cpu", "cuda" or "auto" (cuda when present)
    seed: int = 0                          # seeds data generation, initialisation and shuffling
    true_w: tuple[float, ...] = (2.0, -3.4)  # synthetic data: the true weights
    true_b: float = 4.2                    # synthetic data: the true bias
    num_examples: int = 1000               # synthetic data: number of examples
    noise: float = 0.01                    # synthetic data: standard deviation of the label noise
    data_dir: str | None = None            # Fashion-MNIST: explicit directory holding the IDX files
    allow_download: bool = True            # Fashion-MNIST: may download from the official mirrors
    chunk_rows: int | None = None          # closed form / --stream: read the data in chunks of this many rows
    stream: bool = False                   # SGD from the file in chunks (never all in memory); file or folder
    shuffle_buffer: int | None = None      # --stream: rows in the shuffle buffer; None: 4 chunks' worth
    val_data: str | None = None            # a separate validation table (then no rows are held out of --data)
    checkpoint_every: int | None = None    # epochs between checkpoints; None: 1 unless the run is tiny
    checkpoint_rows: int | None = None     # --stream: also checkpoint inside an epoch every N rows (chunk ends)
    threads: int | None = None             # torch's CPU threads; None: 1 with --stream (its reader takes a core)
    progress: bool = True                  # show a progress bar within each epoch
    allow_many_classes: bool = False       # softmax: accept a fractional numeric target with many values
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes recorded in config.json

    @classmethod
    def create(cls, model: str = "linreg", **overrides: Any) -> TrainConfig:
        """Build a config for ``model`` with the chapter's defaults, ``None`` overrides ignored."""
        if model not in MODELS:
            raise ConfigError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}.")
        values = dict(CHAPTER_DEFAULTS[model])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(model=model, **values)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}.")
        if self.impl not in IMPLS[self.model]:
            raise ConfigError(f"--impl {self.impl} is not available for {self.model}; choose one of "
                              f"{', '.join(IMPLS[self.model])}.")
        _positive("lr", self.lr, "--lr must be a finite number > 0 (the chapter uses 0.03 for linreg, 0.1 for "
                  "softmax)")
        _check(isinstance(self.batch_size, int) and self.batch_size > 0, "--batch-size must be a positive "
               "integer")
        _check(isinstance(self.epochs, int) and self.epochs >= 0, "--epochs must be an integer >= 0")
        _check(self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}")
        _check(self.model == "linreg" or self.loss == "squared", "--loss applies to linreg only")
        _positive("huber_delta", self.huber_delta, "--huber-delta must be a finite number > 0")
        _check(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "--weight-decay must be >= 0")
        _check(self.lr_schedule in SCHEDULES, f"--lr-schedule must be one of {', '.join(SCHEDULES)}")
        _check(self.val_fraction is None or 0 <= self.val_fraction < 1, "--val-fraction must be in [0, 1)")
        _check(self.resize is None or 1 <= self.resize <= 1024, "--resize must be between 1 and 1024")
        _check(self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}")
        _check(self.num_examples > 0, "the number of synthetic examples must be positive")
        _check(self.noise >= 0, "--noise must be >= 0")
        _check(len(self.true_w) > 0, "the true weights must not be empty")
        _check(self.chunk_rows is None or self.chunk_rows > 0, "--chunk-rows must be positive")
        _check(isinstance(self.seed, int) and 0 <= self.seed < 2**63 - 1, "--seed must be an integer from 0 to "
               "2**63 - 2")
        _check(self.checkpoint_every is None or self.checkpoint_every >= 0, "--checkpoint-every must be >= 0")
        _check(self.shuffle_buffer is None or (isinstance(self.shuffle_buffer, int) and self.shuffle_buffer > 0),
               "--shuffle-buffer must be a positive number of rows")
        _check(self.shuffle_buffer is None or self.stream, "--shuffle-buffer applies to --stream only")
        _check(self.checkpoint_rows is None or (isinstance(self.checkpoint_rows, int) and self.checkpoint_rows > 0),
               "--checkpoint-rows must be a positive number of rows")
        _check(self.checkpoint_rows is None or self.stream, "--checkpoint-rows applies to --stream only")
        _check(not self.stream or self.is_csv, "--stream trains from a file or folder; give --data PATH")
        _check(self.threads is None or (isinstance(self.threads, int) and self.threads > 0),
               "--threads must be a positive integer")
        _check(self.val_data is None or self.is_csv, "--val-data applies to training on a table (--data PATH)")
        _check(self.val_data is None or not self.val_fraction, "--val-data replaces the rows --val-fraction would "
               "hold out of --data; give one of them")
        _check(self.val_data is None or self.impl != "closed-form" or not (self.stream or self.chunk_rows),
               "the streamed closed form holds validation rows out by --val-fraction; --val-data is for SGD")
        if self.features is not None and not isinstance(self.features, tuple):
            object.__setattr__(self, "features", tuple(self.features))
        if not isinstance(self.true_w, tuple):
            object.__setattr__(self, "true_w", tuple(float(v) for v in self.true_w))

    @property
    def is_csv(self) -> bool:
        """True when the data is a user's file rather than a built-in dataset."""
        return self.data not in ("synthetic", "fashion-mnist")

    @property
    def resolved_val_fraction(self) -> float:
        """Validation share: 0.2 for CSV files, 0 with --val-data, synthetic data and Fashion-MNIST (test set)."""
        if self.val_fraction is not None:
            return self.val_fraction
        return 0.2 if self.is_csv and self.val_data is None else 0.0

    @property
    def resolved_threads(self) -> int | None:
        """torch's CPU threads for the run, None for torch's default (a thread per core).

        A streamed run defaults to one: its small steps gain nothing from a second thread, while
        the reader thread parsing ahead needs the other core (measured: benchmarks stream_sgd)."""
        return self.threads if self.threads is not None else (1 if self.stream else None)

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field, less those of another data source (see ONLY_FOR)."""
        d = dataclasses.asdict(self)
        d["features"] = list(self.features) if self.features is not None else None
        d["true_w"] = list(self.true_w)
        for data, keys in ONLY_FOR.items():
            if self.data != data:
                for key in keys:
                    del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config from a newer version)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"config has unknown fields {sorted(unknown)}; was it written by a newer "
                              "linearnet?")
        d = dict(d)
        if d.get("features") is not None:
            d["features"] = tuple(d["features"])
        if "true_w" in d:
            d["true_w"] = tuple(d["true_w"])
        return cls(**d)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message + ".")


def _positive(name: str, value: float, message: str) -> None:
    _check(isinstance(value, (int, float)) and math.isfinite(value) and value > 0, message)
