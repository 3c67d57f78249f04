"""The IDX file format (LeCun's MNIST format): a validating reader and a writer, gzip or raw.

Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64), the number of dimensions, each dimension as a big-endian uint32, then the data,
big-endian. The reader checks every part against the file length before allocating anything.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODES = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
_CODES[np.dtype(np.uint8)] = 0x08
_CODES[np.dtype(np.int8)] = 0x09


def read_bytes(path: str | Path, max_bytes: int | None = None) -> bytes:
    """The decompressed bytes of ``path`` (gzip detected by its magic number, not its name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}).") from None
    if raw[:2] != b"\x1f\x8b":
        if path.suffix == ".gz" and raw[:2] != b"\0\0":  # neither gzip nor an IDX file under a .gz name
            why = f"a .gz file starts with bytes 1f 8b, this one with {raw[:2].hex(' ')}" if raw else "it is empty"
            raise DataError(f"{path}: not gzip data ({why}); delete the file and fetch it again.")
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as fh:
            return fh.read() if max_bytes is None else fh.read(max_bytes)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupt gzip data ({exc}); delete the file and fetch it again.") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes into a native-endian numpy array, validating magic, type and sizes.

    Raises
    ------
    DataError
        Bad magic, unknown type code, or a declared size that disagrees with the data length.
    """
    if len(data) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(data)} bytes).")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic {data[:4].hex()}).")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise DataError(f"{name}: unknown IDX element type 0x{code:02X}.")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated header ({ndim} dimensions declared, {len(data)} bytes).")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[code]
    count = 1
    for s in shape:
        count *= s
    expected = header + count * dtype.itemsize
    if expected != len(data):
        raise DataError(f"{name}: header declares shape {shape} ({expected} bytes) but the file has "
                        f"{len(data)} bytes; the file is truncated or corrupt.")
    try:
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)
    except ValueError:  # e.g. a zero dimension beside dimensions whose product overflows numpy's index type
        raise DataError(f"{name}: header declares an impossible shape {shape}.") from None
    return arr.astype(dtype.newbyteorder("="), copy=False) if dtype.byteorder == ">" else arr


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a numpy array; any malformation raises DataError."""
    path = Path(path)
    return parse_idx(read_bytes(path), name=str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode ``array`` (uint8, int8, int16, int32, float32 or float64) as IDX bytes."""
    arr = np.asarray(array)
    native = arr.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}")
    code = _CODES[native]
    if arr.ndim > 255:
        raise ValueError("IDX stores at most 255 dimensions")
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    return head + np.ascontiguousarray(arr, dtype=IDX_TYPES[code]).tobytes()


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``compress`` (default: name ends .gz)."""
    from ..io import atomic_open

    path = Path(path)
    data = idx_bytes(array)
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    with atomic_open(path, "wb") as fh:
        fh.write(data)
