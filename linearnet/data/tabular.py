"""The user's own CSV data: strict parsing with one-sentence errors, and feature standardization."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError


@dataclass
class Table:
    """A parsed CSV: float32 features, a target, and the names needed to apply a model later.

    ``y`` is float32 of shape (n, 1) for regression, or int64 class indices of shape (n,) for
    classification, in which case ``classes`` lists the original labels in index order.
    """

    X: torch.Tensor
    y: torch.Tensor | None
    feature_names: list[str]
    target_name: str | None
    classes: list[str] | None = None


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the --data path.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV file; export it as CSV (UTF-8).") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc}); fix the file's quoting.") from None
    if not rows:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows.")
    header = [h.strip() for h in rows[0]]
    if all(_is_number(h) for h in header):
        raise DataError(f"{path}: the first row looks like data, not a header; add a header row naming "
                        "the columns.")
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path}: duplicate column names {dup}; give every column a unique name.")
    return header, rows[1:]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_csv(path: str | Path, target: str | None, features: list[str] | tuple[str, ...] | None = None,
             task: str = "regression", classes: list[str] | None = None) -> Table:
    """Read a CSV with a header row into a :class:`Table`.

    Parameters
    ----------
    path : path to the CSV file.
    target : name of the target column, or None to read features only (prediction).
    features : feature columns in order; None means every column except the target.
    task : "regression" (numeric target) or "classification" (any labels, e.g. strings).
    classes : for classification, the known label list (from a trained model); a label outside it
        is an error. None builds it from the data, sorted.

    Raises
    ------
    DataError
        Missing file or column, text/NaN/inf in a feature, wrong row length, fewer rows than features.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    if target is not None and target not in header:
        raise DataError(f"{path}: no target column {target!r} (columns: {', '.join(header)}); pass the "
                        "right --target.")
    if features is None:
        features = [h for h in header if h != target]
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(f"{path}: no feature column(s) {missing} (columns: {', '.join(header)}); fix "
                        "--features.")
    if not features:
        raise DataError(f"{path}: no feature columns besides the target; the file needs at least one.")
    if not rows:
        raise DataError(f"{path}: the file has a header but no data rows.")
    cols = [header.index(f) for f in features]
    values = []
    for line_no, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {line_no} has {len(row)} fields but the header has "
                            f"{len(header)}; fix that row.")
        out = []
        for name, c in zip(features, cols):
            cell = row[c].strip()
            try:
                v = float(cell)
            except ValueError:
                raise DataError(f"{path}: line {line_no}, feature {name!r} is {cell!r}, not a number; "
                                "features must be numeric.") from None
            if not math.isfinite(v):
                raise DataError(f"{path}: line {line_no}, feature {name!r} is {cell!r}; remove or "
                                "impute NaN/inf values.")
            out.append(v)
        values.append(out)
    if target is not None and task == "regression" and len(rows) <= len(features):
        raise DataError(f"{path}: {len(rows)} rows for {len(features)} features; a linear model needs "
                        "more rows than features.")
    X = torch.tensor(values, dtype=torch.float32)
    y, found_classes = None, None
    if target is not None:
        t = header.index(target)
        raw = [row[t].strip() for row in rows]
        if task == "regression":
            y = torch.tensor([_parse_target(path, v, i + 2, target) for i, v in enumerate(raw)],
                             dtype=torch.float32).reshape(-1, 1)
        else:
            y, found_classes = _encode_labels(path, raw, target, classes)
    return Table(X, y, list(features), target, found_classes if target is not None else classes)


def _parse_target(path: Path, cell: str, line_no: int, target: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise DataError(f"{path}: line {line_no}, target {target!r} is {cell!r}, not a number; "
                        "regression needs a numeric target.") from None
    if not math.isfinite(v):
        raise DataError(f"{path}: line {line_no}, target {target!r} is {cell!r}; remove rows with NaN/inf.")
    return v


def _encode_labels(path: Path, raw: list[str], target: str,
                   classes: list[str] | None) -> tuple[torch.Tensor, list[str]]:
    if any(v == "" for v in raw):
        raise DataError(f"{path}: the target column {target!r} has empty cells; every row needs a label.")
    if classes is None:
        uniq = set(raw)
        numeric = all(_is_number(v) for v in uniq)
        classes = sorted(uniq, key=float) if numeric else sorted(uniq)
    lookup = {c: i for i, c in enumerate(classes)}
    unseen = sorted(set(raw) - set(lookup))
    if unseen:
        raise DataError(f"{path}: label(s) {unseen[:5]} in {target!r} were not seen in training "
                        f"(known: {classes[:10]}); the model cannot predict new classes.")
    return torch.tensor([lookup[v] for v in raw], dtype=torch.int64), list(classes)


class Standardizer:
    """Per-column ``(x - mean) / std`` with statistics fitted on training rows only.

    A constant column gets std 1 so it maps to 0 instead of dividing by zero. The statistics are
    saved with the model so prediction applies exactly the same transform.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean, std

    @classmethod
    def fit(cls, X: torch.Tensor) -> Standardizer:
        X64 = X.double()
        mean = X64.mean(0)
        std = X64.std(0, unbiased=False) if len(X) > 1 else torch.ones_like(mean)
        std = torch.where(std > 1e-12 * mean.abs().clamp_min(1.0), std, torch.ones_like(std))
        return cls(mean.to(X.dtype), std.to(X.dtype))

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        return (X - self.mean.to(X.dtype)) / self.std.to(X.dtype)

    def inverse(self, Z: torch.Tensor) -> torch.Tensor:
        return Z * self.std.to(Z.dtype) + self.mean.to(Z.dtype)
