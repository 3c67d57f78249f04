"""Safe model files: safetensors tensors plus JSON metadata; nothing is ever unpickled.

A model file holds the parameters in the canonical layout (``weight`` (k, d), ``bias`` (k,)), any
preprocessing statistics, and metadata (format version, model kind, shapes, feature names, class
labels). Loading checks all of it and refuses pickles, newer formats and inconsistent shapes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import ModelFileError
from .io import atomic_path

FORMAT_VERSION = 1
MODEL_KINDS = ("linreg", "softmax")
_PICKLE_MAGICS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
DIGEST_KEY = "tensors_sha256"  # metadata entry: SHA-256 of the tensors (see tensors_digest)


def tensors_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order.

    Stored in model and checkpoint metadata so that altered bytes (a flipped bit that still decodes
    as a finite number) are caught on load; safetensors itself checks only the layout.
    """
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_digest(tensors: dict[str, torch.Tensor], meta: dict[str, str], name: str) -> None:
    """Refuse tensors whose digest differs from the recorded one (files without a digest are older: pass)."""
    recorded = meta.get(DIGEST_KEY)
    if recorded is not None and recorded != tensors_digest(tensors):
        raise ModelFileError(f"{name}: tensor data does not match the SHA-256 recorded in the file, so the file "
                             "is corrupt; restore it from a copy or train again.")


@dataclass
class ModelFile:
    """The contents of a model file: parameters, preprocessing tensors and metadata."""

    kind: str
    weight: torch.Tensor
    bias: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # x_mean, x_std, y_mean, y_std

    def validate(self, name: str = "model") -> None:
        if self.kind not in MODEL_KINDS:
            raise ModelFileError(f"{name}: unknown model kind {self.kind!r}.")
        if self.weight.dim() != 2 or self.bias.dim() != 1 or self.bias.shape[0] != self.weight.shape[0]:
            raise ModelFileError(f"{name}: weight {tuple(self.weight.shape)} and bias {tuple(self.bias.shape)} "
                                 "do not fit together.")
        k, d = self.weight.shape
        for key in ("feature_names", "classes"):  # JSON from the file: any type may stand there
            value = self.meta.get(key)
            if value is not None and not (isinstance(value, list)
                                          and all(isinstance(v, (str, int, float)) for v in value)):
                raise ModelFileError(f"{name}: metadata {key} must be a list of names.")
        if self.kind == "linreg" and k != 1:
            raise ModelFileError(f"{name}: a linear regression model has one output, not {k}.")
        names = self.meta.get("feature_names")
        if names is not None and len(names) != d:
            raise ModelFileError(f"{name}: {len(names)} feature names for {d} inputs.")
        classes = self.meta.get("classes")
        if self.kind == "softmax" and classes is not None and len(classes) != k:
            raise ModelFileError(f"{name}: {len(classes)} class labels for {k} outputs.")
        for key in ("x_mean", "x_std"):
            if key in self.extras and tuple(self.extras[key].shape) != (d,):
                raise ModelFileError(f"{name}: {key} has shape {tuple(self.extras[key].shape)}, expected ({d},).")
        for key, t in [("weight", self.weight), ("bias", self.bias), *self.extras.items()]:
            if not torch.isfinite(t).all():
                raise ModelFileError(f"{name}: {key} contains NaN or inf.")


def save_model(path: str | Path, model: ModelFile) -> None:
    """Validate and write ``model`` atomically as safetensors."""
    from safetensors.torch import save_file

    model.validate(str(path))
    tensors = {"weight": model.weight.detach().cpu().contiguous(),
               "bias": model.bias.detach().cpu().contiguous()}
    tensors.update({k: v.detach().cpu().contiguous() for k, v in model.extras.items()})
    meta = {"format_version": str(FORMAT_VERSION), "kind": model.kind,
            "meta": json.dumps(model.meta, sort_keys=True), DIGEST_KEY: tensors_digest(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_model(path: str | Path) -> ModelFile:
    """Read and check a model file written by :func:`save_model`.

    Raises
    ------
    ModelFileError
        Missing file, a pickle/``.pt`` file, a corrupt or truncated file, a newer format version,
        or tensors and metadata that disagree.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: model file not found; pass a run folder or a .safetensors file.") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read ({exc.strerror}).") from None
    if path.suffix in (".pt", ".pth", ".pkl", ".pickle") or raw.startswith(_PICKLE_MAGICS):
        raise ModelFileError(f"{path}: looks like a pickle/torch.save file; linearnet never unpickles "
                             "(it can run arbitrary code). Use a model.safetensors written by linearnet.")
    return parse_model_bytes(raw, str(path))


def parse_model_bytes(raw: bytes, name: str = "model") -> ModelFile:
    """Parse model-file bytes (the fuzzed entry point): a ModelFile or ModelFileError, nothing else."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    meta = _header_metadata(raw, name)
    try:
        tensors = load(raw)
    except (SafetensorError, ValueError, RuntimeError, TypeError, OverflowError) as exc:
        raise ModelFileError(f"{name}: corrupt safetensors file ({str(exc)[:100]}).") from None
    check_digest(tensors, meta, name)
    try:
        version = int(meta.get("format_version", "-1"))
    except ValueError:
        version = -1
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{name}: format version {version} is newer than this linearnet understands "
                             f"({FORMAT_VERSION}); upgrade linearnet.")
    if version < 1:
        raise ModelFileError(f"{name}: not a linearnet model file (no valid format_version).")
    try:
        info = json.loads(meta.get("meta", "{}"))
        if not isinstance(info, dict):
            raise ValueError
    except ValueError:
        raise ModelFileError(f"{name}: metadata is not valid JSON.") from None
    if "weight" not in tensors or "bias" not in tensors:
        raise ModelFileError(f"{name}: missing weight or bias tensor.")
    extras = {k: v for k, v in tensors.items() if k in ("x_mean", "x_std", "y_mean", "y_std")}
    for k, v in [("weight", tensors["weight"]), ("bias", tensors["bias"]), *extras.items()]:
        if not v.is_floating_point():
            raise ModelFileError(f"{name}: tensor {k} must be floating point, not {v.dtype}.")
    model = ModelFile(str(meta.get("kind")), tensors["weight"], tensors["bias"], info, extras)
    model.validate(name)
    return model


def _header_metadata(raw: bytes, name: str) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header, read without trusting any size in it."""
    if len(raw) < 8:
        raise ModelFileError(f"{name}: too short to be a safetensors file.")
    n = int.from_bytes(raw[:8], "little")
    if n <= 0 or 8 + n > len(raw) or n > 100_000_000:
        raise ModelFileError(f"{name}: corrupt safetensors header (declared {n} bytes).")
    try:
        header = json.loads(raw[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        raise ModelFileError(f"{name}: corrupt safetensors header (not JSON).") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{name}: not a linearnet model file (no metadata).")
    return meta
