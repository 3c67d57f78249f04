"""A finished run in words (``linearnet show RUN``): its configuration, final metrics and model.

Linear models are shown as coefficients by feature name in the data's own units (the stored
standardization folded back in), so they read like any regression output.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..config import ONLY_FOR  # fields that mean nothing elsewhere (older config files hold them)
from ..data import fashion_mnist as fm
from ..errors import ConfigError
from ..inference import TrainedModel

SKIPPED_CONFIG = ("extra", "progress")  # not part of what was trained
SKIPPED_METRICS = ("confusion_matrix", "per_class_accuracy", "confusion_split")
LINREG_ONLY = ("loss", "huber_delta")  # a softmax run is trained with the cross-entropy, whatever these say
NOT_FOR_IMAGES = ("standardize", "target", "features", "allow_many_classes")  # table options


def raw_coefficients(model: TrainedModel) -> tuple[torch.Tensor, torch.Tensor]:
    """``(coef (k, d), intercept (k,))`` with ``output = intercept + coef @ x`` on raw inputs.

    Undoes the feature standardization (and, for regression, the target's) saved with the model.
    Image models get coefficients on their transformed pixels unchanged.
    """
    w, b = model.weight.double(), model.bias.double()
    if model.x_scaler is not None:
        mean, std = model.x_scaler.mean.double().reshape(-1), model.x_scaler.std.double().reshape(-1)
        w = w / std
        b = b - w @ mean
    if model.y_scaler is not None:
        ym, ys = model.y_scaler.mean.double().reshape(-1), model.y_scaler.std.double().reshape(-1)
        w, b = w * ys[:, None], b * ys + ym
    return w, b


def _value(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list) and all(isinstance(x, (int, float)) for x in v):
        return "[" + ", ".join(_value(float(x)) for x in v) + "]"
    return str(v)


def _wrapped(pairs: list[tuple[str, object]], width: int = 100) -> list[str]:
    """``key value`` pairs, comma-separated, lines of at most ``width``: a pair is never split."""
    lines: list[str] = []
    for item in (f"{k} {_value(v)}" for k, v in pairs):
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            if lines:
                lines[-1] += ","
            lines.append("  " + item)
    return lines


def describe_run(run_dir: Path) -> str:
    """The text ``linearnet show`` prints for a run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "model.safetensors").is_file():
        partial = run_dir.with_name(run_dir.name + ".partial")
        if (partial / "config.json").is_file():
            model_name = json.loads((partial / "config.json").read_text()).get("model", "MODEL")
            raise ConfigError(f"{run_dir} has not finished ({partial} holds the interrupted run); continue it "
                              f"with: linearnet train {model_name} --resume {run_dir}")
        raise ConfigError(f"{run_dir} is not a finished run folder (no model.safetensors).")
    model = TrainedModel.load(run_dir)
    lines = [f"run: {run_dir}"]
    config_path, metrics_path = run_dir / "config.json", run_dir / "metrics.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        lines.append("configuration (config.json):")
        unused = [k for data, keys in ONLY_FOR.items() if config.get("data") != data for k in keys]
        unused += list(LINREG_ONLY) if config.get("model") == "softmax" else []
        unused += list(NOT_FOR_IMAGES) if config.get("data") in ("synthetic", "fashion-mnist") else []
        lines += _wrapped([(k, v) for k, v in config.items()
                           if k not in SKIPPED_CONFIG and k not in unused and v is not None])
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    if metrics:
        lines.append("final metrics (metrics.json):")
        lines += _wrapped([(k, v) for k, v in metrics.items() if k not in SKIPPED_METRICS])
    names = model.feature_names or [f"x{i}" for i in range(model.weight.shape[1])]
    coef, intercept = raw_coefficients(model)
    if model.kind == "linreg":
        lines.append("model: prediction = intercept + sum of coefficient * feature (in the data's units)")
        width = max(len(n) for n in [*names, "intercept"])
        lines += [f"  {n:<{width}} {float(c):>14.6g}" for n, c in zip(names, coef[0])]
        lines.append(f"  {'intercept':<{width}} {float(intercept[0]):>14.6g}")
    else:
        classes = model.classes or [str(i) for i in range(model.weight.shape[0])]
        lines.append(f"model: softmax over {len(classes)} classes from {model.weight.shape[1]} inputs")
        per_class = metrics.get("per_class_accuracy", {})
        if per_class:  # metrics.json sorts its keys; shown in class-index order, as evaluate prints them
            split = metrics.get("confusion_split", "evaluation")
            lines.append(f"{split} accuracy per class:")
            order = (model.classes or (fm.TEXT_LABELS if model.image is not None else [])) + sorted(per_class)
            named = list(dict.fromkeys(c for c in order if c in per_class))
            width = max(len(c) for c in named)
            lines += [f"  {c:<{width}} {_value(per_class[c])}" for c in named]
        if model.image is None and len(names) <= 12:
            lines.append("coefficients per class (in the data's units), then the intercept:")
            width = max(len(c) for c in classes)
            lines.append(f"  {'':<{width}} " + " ".join(f"{n[:10]:>10}" for n in [*names, "intercept"]))
            for c, row, b in zip(classes, coef, intercept):
                lines.append(f"  {c:<{width}} " + " ".join(f"{float(v):>10.4g}" for v in [*row, b]))
        elif model.image is not None:
            lines.append(f"  the weights of each class, as images: {run_dir / 'weights.png'}")
    files = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
    lines.append("files: " + ", ".join(files))
    return "\n".join(lines)
