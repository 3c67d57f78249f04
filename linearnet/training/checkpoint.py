"""Checkpoints for exact resume: parameters, optimizer state, history and every RNG state.

One safetensors file (``checkpoint.safetensors``) in the run folder, written atomically; the RNG
states are stored as uint8 tensors and the rest as JSON metadata, so loading never unpickles.
A SIGINT or SIGTERM that arrives while the file is written is held back until the write is finished.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelFileError
from ..io import atomic_path
from ..persist import DIGEST_KEY, check_digest, tensors_digest

CHECKPOINT_NAME = "checkpoint.safetensors"


@contextlib.contextmanager
def deferred_sigint():
    """Hold SIGINT and SIGTERM during a critical section; deliver the first one that came afterwards.

    The signal is raised again once the previous handlers are back, so it does what it would have
    done (KeyboardInterrupt for Ctrl-C, the CLI's stop for SIGTERM, the default action otherwise).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        signal.raise_signal(received[0])


def rng_states(batch_generators: dict[str, torch.Generator]) -> tuple[dict[str, torch.Tensor], dict]:
    """Every random state a run depends on: torch CPU/CUDA, numpy, python, and batch generators."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    for name, g in batch_generators.items():
        tensors[f"rng.batches.{name}"] = g.get_state()
    np_state = np.random.get_state()
    meta = {"numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "python": _py_state_to_json(random.getstate())}
    return tensors, meta


def restore_rng_states(tensors: dict[str, torch.Tensor], meta: dict,
                       batch_generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    for name, g in batch_generators.items():
        g.set_state(tensors[f"rng.batches.{name}"])
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), *n[2:]))
    random.setstate(_py_state_from_json(meta["python"]))


def _py_state_to_json(state: tuple) -> list:
    return [state[0], list(state[1]), state[2]]


def _py_state_from_json(state: list) -> tuple:
    return (state[0], tuple(state[1]), state[2])


def save_checkpoint(run_dir: Path, params: dict[str, torch.Tensor], optimizer: dict[str, torch.Tensor],
                    epoch: int, history: list[dict], batch_generators: dict[str, torch.Generator],
                    stream: dict | None = None, stream_tensors: dict[str, torch.Tensor] | None = None,
                    start_loss: float | None = None) -> Path:
    """Write the checkpoint for the end of ``epoch`` (atomic, SIGINT-safe); ``stream``: a streamed
    source's position (its generator is among ``batch_generators``), with ``stream_tensors`` (named
    ``stream.*``: a shuffle buffer's rows) when it was taken inside the next epoch; ``start_loss``:
    the starting parameters' loss that divergence is judged against (``LossWatch``)."""
    from safetensors.torch import save_file

    rng_tensors, rng_meta = rng_states(batch_generators)
    tensors = {f"param.{k}": v.detach().cpu().contiguous() for k, v in params.items()}
    tensors.update({f"optim.{k}": v.detach().cpu().contiguous() for k, v in optimizer.items()})
    tensors.update({k: v.contiguous() for k, v in rng_tensors.items()})
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (stream_tensors or {}).items()})
    meta = {"epoch": str(epoch), "history": json.dumps(history), "rng": json.dumps(rng_meta),
            "format_version": "1", DIGEST_KEY: tensors_digest(tensors)}
    if stream is not None:
        meta["stream"] = json.dumps(stream)
    if start_loss is not None:
        meta["start_loss"] = json.dumps(start_loss)
    path = Path(run_dir) / CHECKPOINT_NAME
    with deferred_sigint(), atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    """Read a checkpoint: ``{"epoch", "history", "params", "optimizer", "rng_tensors", "rng_meta", "stream",
    "stream_tensors", "start_loss"}`` (``start_loss`` None in a checkpoint written before it was kept)."""
    from safetensors import SafetensorError, safe_open

    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise ModelFileError(f"{run_dir}: no {CHECKPOINT_NAME} to resume from (was the run started with "
                             "--checkpoint-every 0?).")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        out = {"epoch": int(meta["epoch"]), "history": json.loads(meta["history"]),
               "rng_meta": json.loads(meta["rng"]), "stream": json.loads(meta.get("stream", "null")),
               "start_loss": json.loads(meta.get("start_loss", "null"))}
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise ModelFileError(f"{path}: unreadable checkpoint ({exc}); start the run again.") from None
    check_digest(tensors, meta, str(path))
    out["params"] = {k[6:]: v for k, v in tensors.items() if k.startswith("param.")}
    out["optimizer"] = {k[6:]: v for k, v in tensors.items() if k.startswith("optim.")}
    out["rng_tensors"] = {k: v for k, v in tensors.items() if k.startswith("rng.")}
    out["stream_tensors"] = {k: v for k, v in tensors.items() if k.startswith("stream.")}
    return out
