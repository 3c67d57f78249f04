"""Atomic file writing: a crash at any moment leaves the old file or the new one, never a torn one."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import OutputError


def _read_umask() -> int:
    """The process umask, read once at import (``os.umask`` can only be read by setting it, so it is
    set back at once; doing it once keeps threads from seeing the brief 0o077)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()  # what open() would give a new file: 0644 under umask 022


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    Use it for writers that want a file name (matplotlib, safetensors). On any exception the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; name a file to write (with --out) instead.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {path.parent}: {exc.strerror}; choose another --out.") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600), and some writers (safetensors) recreate it so: give it
        # the mode any other tool would, under the umask, before it takes the real name.
        with contextlib.suppress(OSError):  # a filesystem without modes keeps what it has
            os.chmod(tmp_path, _FILE_MODE)
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"could not write {path}: {exc.strerror or exc}; free some space or choose "
                          "another --out.") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` only when the block succeeds."""
    with atomic_path(path) as tmp:
        kwargs = {"newline": ""} if "b" not in mode else {}
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` to ``path``."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, strict JSON: NaN and inf become ``null``."""
    write_text(path, json.dumps(_strict(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")


def _strict(obj: Any) -> Any:
    """``obj`` with tensors/arrays as lists, paths as text and every non-finite float as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return _strict(_json_default(obj))


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """Atomically write a list of flat dicts as CSV with a header (keys of the first row)."""
    with atomic_open(path, "w") as fh:
        if not rows:
            return
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
