"""Apply a saved model to new data: the same preprocessing as training, then the linear map."""

from __future__ import annotations

from pathlib import Path

import torch

from .data.fashion_mnist import ImageTransform
from .data.tabular import Standardizer, load_csv
from .errors import DataError
from .persist import ModelFile, load_model


class TrainedModel:
    """A loaded model file with ``predict`` for raw inputs (CSV features or uint8 images)."""

    def __init__(self, model: ModelFile) -> None:
        self.file = model
        self.kind = model.kind
        # float64 models (closed form) are applied in float64; SGD models in float32
        dtype = torch.float64 if model.weight.dtype == torch.float64 else torch.float32
        self.weight = model.weight.to(dtype)
        self.bias = model.bias.to(dtype)
        self.meta = model.meta
        ex = model.extras
        self.x_scaler = Standardizer(ex["x_mean"], ex["x_std"]) if "x_mean" in ex else None
        self.y_scaler = Standardizer(ex["y_mean"], ex["y_std"]) if "y_mean" in ex else None
        img = model.meta.get("image")
        self.image = ImageTransform(img.get("resize"), img.get("mean"), img.get("std")) if img else None

    @classmethod
    def load(cls, path: str | Path) -> TrainedModel:
        return cls(load_model(path))

    @property
    def feature_names(self) -> list[str] | None:
        return self.meta.get("feature_names")

    @property
    def classes(self) -> list[str] | None:
        return self.meta.get("classes")

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """Raw inputs -> the model's input rows (standardized, or image-transformed and flattened)."""
        if self.image is not None:
            X = self.image(X if X.dim() == 3 else X.reshape(-1, 28, 28)).reshape(len(X), -1)
        if self.x_scaler is not None:
            X = self.x_scaler.transform(X.to(torch.float64))  # standardized in float64, then cast
        X = X.to(self.weight.dtype)
        if X.shape[1] != self.weight.shape[1]:
            raise DataError(f"the model expects {self.weight.shape[1]} features but got {X.shape[1]}.")
        return X

    def decision_function(self, X: torch.Tensor) -> torch.Tensor:
        """Raw model outputs (logits for softmax, standardized predictions for regression)."""
        return torch.addmm(self.bias, self.features(X), self.weight.t())

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """Regression: predictions in the target's units (n,). Classification: class indices (n,)."""
        out = self.decision_function(X)
        if self.kind == "linreg":
            if self.y_scaler is not None:
                out = self.y_scaler.inverse(out.to(torch.float64))
            return out.reshape(-1)
        return out.argmax(dim=1)

    def predict_proba(self, X: torch.Tensor) -> torch.Tensor:
        """Class probabilities (n, k)."""
        return torch.softmax(self.decision_function(X), dim=1)

    def predict_csv(self, path: str | Path) -> tuple[list[str], list]:
        """Predictions for every row of a CSV holding the model's feature columns (extra columns ignored)."""
        names = self.feature_names
        if names is None:
            raise DataError("this model was not trained on a CSV file; it cannot read one.")
        table = load_csv(path, target=None, features=names)
        pred = self.predict(table.X)
        if self.kind == "softmax":
            classes = self.classes or [str(i) for i in range(self.weight.shape[0])]
            return ["prediction"], [classes[int(i)] for i in pred]
        return ["prediction"], [float(v) for v in pred]
