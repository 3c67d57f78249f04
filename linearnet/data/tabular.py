"""The user's own tables (CSV, Parquet, ``.npy``): one reader with one-sentence errors, and standardization.

Every path a table takes (in memory for training and prediction, chunked for streaming) goes
through :func:`read_chunks`, so the same files are accepted and refused with the same messages.
CSV is read by pandas' C engine, Parquet by pyarrow, ``.npy`` through a memory map; the kind of
file is told by its first bytes, not its name. Numbers are read in float64.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

_PARQUET_MAGIC = b"PAR1"
_NPY_MAGIC = b"\x93NUMPY"


@dataclass
class Table:
    """A parsed table: float64 features, a target, and the names needed to apply a model later.

    ``y`` is float64 of shape (n, 1) for regression, or int64 class indices of shape (n,) for
    classification, in which case ``classes`` lists the original labels in index order.
    """

    X: torch.Tensor
    y: torch.Tensor | None
    feature_names: list[str]
    target_name: str | None
    classes: list[str] | None = None


class Where:
    """Names rows in messages ("line 7" for CSV, "row 7" for Parquet and .npy), built only when needed."""

    def __init__(self, unit: str, numbers: np.ndarray) -> None:
        self.unit, self.numbers = unit, numbers

    def __getitem__(self, i: int) -> str:
        return f"{self.unit} {int(self.numbers[i])}"

    def subset(self, keep: np.ndarray) -> Where:
        return Where(self.unit, self.numbers[keep])


@dataclass
class Chunk:
    """Consecutive rows of a table: float64 features (n, d), the target and where the rows came from.

    ``X`` is row-major, or column-major (a Parquet chunk, as arrow holds the columns): either way an
    (n, d) array; code needing contiguous rows copies it.

    ``y`` is float64 (n,) (``labels=False``), a str array of canonical labels (``labels=True``; numeric
    labels written ``1`` and ``1.0`` are the same label) or None without a target. ``rows`` are the
    0-based data-row indices in the file (for splitting); ``where[i]`` names row i in messages.
    """

    X: np.ndarray
    y: np.ndarray | None
    rows: np.ndarray
    where: Where
    path: Path | None = None  # the file the rows came from (set by the folder iterator; for messages)
    position: tuple[int, int] | None = None  # (file, chunks read of it) in a pass, set by the folder iterator
    codes: tuple[np.ndarray, np.ndarray] | None = None  # labels: (code per row, label per code), y = labels[codes]


def table_kind(path: Path) -> str:
    """"csv", "parquet" or "npy", from the file's first bytes (a Parquet file named .csv is Parquet)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror}); check the data path.") from None
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head.startswith(_NPY_MAGIC):
        return "npy"
    return "csv"


def default_chunk_rows(num_columns: int) -> int:
    """About 16 MB of float64 per chunk: big enough for fast parsing and BLAS, small enough for flat memory."""
    return max(1024, 2_000_000 // max(num_columns, 1))


def _check_path(path: Path) -> None:
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the data path.")


def read_header(path: str | Path, with_target: bool = True) -> list[str]:
    """Column names of a table; a ``.npy`` array's are x0, x1, ... (its last column is the target)."""
    path = Path(path)
    _check_path(path)
    kind = table_kind(path)
    if kind == "npy":
        arr = _open_npy(path)
        d = arr.shape[1] - (1 if with_target else 0)
        return [f"x{i}" for i in range(d)] + (["y"] if with_target else [])
    if kind == "parquet":
        header = list(_parquet(path).schema_arrow.names)
    else:
        header = _csv_header(path)[0]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise DataError(f"{path}: duplicate column names {dup}; give every column a unique name.")
    return header


def _csv_header(path: Path) -> tuple[list[str], int]:
    """The stripped header names and the number of physical lines up to and including the header."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines = 0
            for line in fh:
                lines += 1
                if line.strip(" \t\r\n,"):
                    header = next(csv.reader(io.StringIO(line)))
                    break
            else:
                raise DataError(f"{path}: the file is empty; it needs a header row and data rows.")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV file; export it as CSV (UTF-8).") from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV header ({exc}); fix the file's quoting.") from None
    header = [h.strip() for h in header]
    if all(is_number(h) for h in header):
        raise DataError(f"{path}: the first row looks like data, not a header; add a header row naming the "
                        "columns.")
    if any(h == "" for h in header):
        raise DataError(f"{path}: column {header.index('') + 1} of the header has no name; name every column.")
    return header, lines


def is_number(text: str) -> bool:
    """True when ``text`` parses as a float (a numeric label or a data-like header cell)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def select_columns(path: Path, header: list[str], target: str | None,
                   features: list[str] | tuple[str, ...] | None) -> list[str]:
    """The feature columns to read: checked to exist, be unique and not include the target."""
    if target is not None and target not in header:
        raise DataError(f"{path}: no target column {target!r} (columns: {', '.join(header)}); name the right "
                        "target.")
    names = list(features) if features is not None else [h for h in header if h != target]
    missing = [f for f in names if f not in header]
    if missing:
        raise DataError(f"{path}: no feature column(s) {missing} (columns: {', '.join(header)}); the features "
                        "must be columns of the file.")
    if target is not None and target in names:
        raise DataError(f"{path}: the target {target!r} is also listed as a feature; leave it out of the "
                        "features.")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: the features name a column twice; list each once.")
    if not names:
        raise DataError(f"{path}: no feature columns besides the target; the file needs at least one.")
    return names


def read_chunks(path: str | Path, target: str | None, features=None, chunk_rows: int | None = None, *,
                labels: bool = False, rank: int = 0, world_size: int = 1, skip_chunks: int = 0,
                threaded: bool = True) -> tuple[list[str], Iterator[Chunk]]:
    """Feature names and the stream of this rank's :class:`Chunk` s of a CSV, Parquet or ``.npy`` file.

    Parameters
    ----------
    path : the table. A ``.npy`` file is a 2-D numeric array whose columns are named x0, x1, ...; with a
        target its last column is the target.
    target : the target column, or None to read features only.
    features : feature columns in order; None means every column except the target.
    chunk_rows : rows per chunk (default: about 16 MB of float64, :func:`default_chunk_rows`).
    labels : return the target as canonical string labels (classification) instead of float64.
    rank, world_size : rank ``rank`` of ``world_size`` reads only its own consecutive part of the file
        and parses nothing else: a row range of a ``.npy``, whole row groups of a Parquet file, a byte
        range of a CSV aligned to line starts (rows and line numbers stay those of the whole file).
    skip_chunks : start after this many chunks of the rank's part (a resumed pass), cut as before: a
        ``.npy`` or CSV is not read before them (a CSV's lines are counted, not parsed); a Parquet
        file's are decoded and dropped.
    threaded : let pyarrow decode a Parquet file's columns on all cores; False decodes them in the
        calling thread (streamed SGD, whose steps take the other core).

    Raises
    ------
    DataError
        Unreadable file, missing/duplicate columns, text/NaN/inf/empty cells (naming line or row), rows
        with more fields than the header.
    """
    path = Path(path)
    _check_path(path)
    kind = table_kind(path)
    if kind == "npy":
        names, chunks = _npy_chunks(path, target, features, chunk_rows, labels, rank, world_size, skip_chunks)
    else:
        header = read_header(path)
        names = select_columns(path, header, target, features)
        chunk_rows = int(chunk_rows or default_chunk_rows(len(header)))
        reader = _parquet_chunks if kind == "parquet" else _csv_chunks
        chunks = reader(path, header, names, target, chunk_rows, labels, rank, world_size, skip_chunks,
                        **({"threaded": threaded} if kind == "parquet" else {}))
    return names, chunks


# ----- the three formats ------------------------------------------------------------------------------
def _open_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy's header parser raises many types for a damaged file
        if isinstance(exc, ValueError) and "object" in str(exc):
            raise DataError(f"{path}: the .npy array holds Python objects, not numbers; save a numeric array.") \
                from None
        raise DataError(f"{path}: not a readable .npy file ({str(exc)[:80]}).") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf" or arr.ndim != 2 or arr.shape[1] < 1:
        raise DataError(f"{path}: expected a 2-D numeric array (features, then the target as last column).")
    return arr


def _npy_chunks(path: Path, target, features, chunk_rows: int | None, labels: bool, rank: int = 0,
                world_size: int = 1, skip_chunks: int = 0):
    arr = _open_npy(path)
    chunk_rows = int(chunk_rows or default_chunk_rows(arr.shape[1]))
    has_target = target is not None
    if has_target and arr.shape[1] < 2:
        raise DataError(f"{path}: expected a 2-D array with features then the target as last column.")
    d = arr.shape[1] - (1 if has_target else 0)
    header = [f"x{i}" for i in range(d)]
    if features is not None:
        missing = [f for f in features if f not in header]
        if missing:
            raise DataError(f"{path}: a .npy array has no column names; its features are x0..x{d - 1}, not "
                            f"{missing}.")
        names = list(features)
    else:
        names = header
    cols = [header.index(f) for f in names]

    def gen():
        lo, hi = len(arr) * rank // world_size, len(arr) * (rank + 1) // world_size  # this rank's rows
        for start in range(lo + skip_chunks * chunk_rows, hi, chunk_rows):
            block = np.array(arr[start:min(start + chunk_rows, hi)], dtype=np.float64)
            rows = np.arange(start, start + len(block))
            where = Where("row", rows + 1)
            X = _finite(path, block[:, cols], names, where, "feature")
            y = codes = None
            if has_target:
                y = block[:, -1]
                if labels:
                    y, codes = _labels_of(y.astype(str), path, target, where)
                else:
                    y = _finite(path, y[:, None], [target], where, "target")[:, 0]
            yield Chunk(np.ascontiguousarray(X), y, rows, where, codes=codes)

    return names, gen()


def _parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        # no pre-buffering: it reads ahead the column chunks of every row group asked for (a whole file
        # for a pass), so memory grew with the file; without it, one row group is held at a time
        return pq.ParquetFile(path, pre_buffer=False)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({str(exc)[:80]}).") from None


def _parquet_chunks(path: Path, header, names, target, chunk_rows: int, labels: bool, rank: int = 0,
                    world_size: int = 1, skip_chunks: int = 0, threaded: bool = True):
    import pyarrow as pa

    pf = _parquet(path)
    groups, start = None, 0
    if world_size > 1:  # whole row groups, consecutive, those starting in this rank's share of the rows
        sizes = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        total = max(int(sum(sizes)), 1)
        groups = [i for i, s in enumerate(starts) if int(s) * world_size // total == rank]
        if not groups:
            return
        start = int(starts[groups[0]])
    schema = pf.schema_arrow
    numeric = bool(names) and all(pa.types.is_integer(t) or pa.types.is_floating(t)
                                  for t in (schema.field(name).type for name in names))
    batches = pf.iter_batches(batch_size=chunk_rows, row_groups=groups, use_threads=threaded,
                              columns=[*names, *([target] if target else [])])
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # pyarrow raises several types for damaged pages
            raise DataError(f"{path}: not a readable Parquet file ({str(exc)[:80]}).") from None
        n = batch.num_rows
        if skip_chunks > 0:  # a resumed pass: batches span row groups, so they are cut from the start
            skip_chunks, start = skip_chunks - 1, start + n
            continue
        rows = np.arange(start, start + n)
        where = Where("row", rows + 1)
        X = _parquet_features(path, batch, names, where, pa, numeric)
        y = codes = None
        if target is not None:
            col = batch.column(target)
            if labels:
                # the distinct labels once, then one index per row
                enc = col if pa.types.is_dictionary(col.type) else col.dictionary_encode()
                codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
                y, codes = _labels_from_codes(codes, enc.dictionary.to_pylist(), path, target, where)
            else:
                y = _finite(path, _parquet_numbers(path, col, target, where, pa)[:, None], [target], where,
                            "target")[:, 0]
        start += n
        yield Chunk(X, y, rows, where, codes=codes)


def _parquet_features(path: Path, batch, names: list[str], where: Where, pa, numeric: bool) -> np.ndarray:
    """The feature columns of a record batch as float64 (n, d), every value finite.

    When every feature column is an integer or float column (``numeric``) arrow lays them side by
    side in one call (the array is column-major, (n, d) as a transposed view: no transposing copy
    here; consumers that need rows contiguous copy once anyway, to float32); other types are
    converted (or refused) column by column.
    """
    if numeric:
        X = np.asarray(batch.select(names).to_tensor(null_to_nan=True, row_major=False))  # nulls read as NaN
        if X.dtype != np.float64 or not X.flags.writeable:
            X = X.astype(np.float64, order="F")
    else:
        X = np.empty((batch.num_rows, len(names)))
        for j, name in enumerate(names):
            X[:, j] = _parquet_numbers(path, batch.column(name), name, where, pa)
    return _finite(path, X, names, where, "feature")


def _parquet_numbers(path: Path, col, name: str, where: Where, pa) -> np.ndarray:
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_decimal(t) or pa.types.is_null(t)):
        values = col.to_pylist()
        i = next((i for i, v in enumerate(values) if v is not None), 0)
        raise DataError(f"{path}: {where[i]}, column {name!r} is {values[i]!r} ({t}), not a number; the column "
                        "must be numeric.")
    return np.require(col.cast(pa.float64()).to_numpy(zero_copy_only=False), np.float64, ["W"])


_MISSING = ["", "nan", "NaN", "NAN", "NA", "N/A", "null", "NULL"]  # cells read as missing numbers
_BAD_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


class _ByteRange(io.RawIOBase):
    """At most ``size`` bytes of ``fh`` from its position: one rank's part of a CSV, for pandas."""

    def __init__(self, fh, size: int) -> None:
        super().__init__()
        self.fh, self.left = fh, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.fh.read(min(len(buffer), self.left))
        self.left -= len(data)
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.fh.close()
        super().close()


def _csv_share(path: Path, header_lines: int, rank: int, world_size: int) -> tuple[int, int, int]:
    """This rank's bytes ``[lo, hi)`` of a CSV's data, cut at line starts, and the data rows before ``lo``.

    The data is cut into equal byte ranges, each moved forward to the next line start; the rows
    before a range are its newlines counted (no parsing), so line numbers stay those of the file.
    A quoted cell holding a line break is not supported at a cut (nor, for line numbers, anywhere).
    """
    with open(path, "rb") as fh:
        for _ in range(header_lines):
            fh.readline()
        first, size = fh.tell(), path.stat().st_size

        def line_start(b: int) -> int:
            if b <= first:
                return first
            fh.seek(b - 1)
            fh.readline()
            return fh.tell()

        lo = line_start(first + (size - first) * rank // world_size)
        hi = line_start(first + (size - first) * (rank + 1) // world_size)
        fh.seek(first)
        rows, left = 0, lo - first
        while left > 0:
            block = fh.read(min(left, 1 << 24))
            rows, left = rows + block.count(b"\n"), left - len(block)
    return lo, hi, rows


def _after_lines(path: Path, lo: int, hi: int, lines: int) -> tuple[int, int]:
    """The byte offset after ``lines`` more lines from ``lo`` (at most ``hi``), and the lines passed."""
    with open(path, "rb") as fh:
        fh.seek(lo)
        pos, found = lo, 0
        while found < lines and pos < hi:
            block = fh.read(min(1 << 24, hi - pos))
            if not block:
                break
            count = block.count(b"\n")
            if found + count >= lines:
                at = -1
                for _ in range(lines - found):
                    at = block.index(b"\n", at + 1)
                return pos + at + 1, lines
            found, pos = found + count, pos + len(block)
    return hi, found


def _csv_chunks(path: Path, header, names, target, chunk_rows: int, labels: bool, rank: int = 0,
                world_size: int = 1, skip_chunks: int = 0):
    import pandas as pd

    header_lines = _csv_header(path)[1]
    source, skip, start, shift = path, header_lines, 0, 0
    if world_size > 1 or skip_chunks:
        lo, hi, start = _csv_share(path, header_lines, rank, world_size)
        if skip_chunks:  # a chunk is chunk_rows lines (blank ones too): count them, parse nothing
            lo, passed = _after_lines(path, lo, hi, skip_chunks * chunk_rows)
            start += passed
        fh = open(path, "rb")
        fh.seek(lo)
        source, skip = io.BufferedReader(_ByteRange(fh, hi - lo), 1 << 20), 0
        shift = header_lines + start  # pandas numbers the lines of its range from 1
    cols = [header.index(f) for f in names]
    t = header.index(target) if target is not None else None
    dtypes = {t: str} if labels and t is not None else None
    missing = {i: _MISSING for i in range(len(header))}
    if dtypes:
        missing[t] = [""]  # a label such as "NA" is a class, not a missing value
    try:
        reader = pd.read_csv(source, header=None, names=range(len(header)), skiprows=skip, engine="c",
                             chunksize=chunk_rows, encoding="utf-8-sig", skip_blank_lines=False,
                             skipinitialspace=True, dtype=dtypes, keep_default_na=False,
                             na_values=missing,
                             low_memory=False)
        for frame in reader:
            blank = frame.isna().all(axis=1).to_numpy()
            lines = np.arange(start, start + len(frame)) + header_lines + 1
            start += len(frame)
            if blank.any():
                frame, lines = frame[~blank], lines[~blank]
            if len(frame) == 0:
                continue
            where = Where("line", lines)
            numeric = [dt.kind in "biuf" for dt in frame.dtypes]
            if all(numeric):  # the usual case: one vectorized copy (per-column pandas access is slow when wide)
                full = frame.to_numpy(dtype=np.float64)
                X = full[:, :len(cols)] if cols == list(range(len(cols))) else full[:, cols]
            elif all(numeric[c] for c in cols):
                X = frame[cols].to_numpy(dtype=np.float64)
            else:
                X = np.empty((len(frame), len(names)))
                for j, (name, c) in enumerate(zip(names, cols)):
                    X[:, j] = _csv_numbers(path, frame[c], name, where, "feature")
            X = _finite(path, X, names, where, "feature")
            y = codes = None
            if t is not None:
                if labels:
                    y, codes = _labels_of(frame[t].to_numpy(dtype=object), path, target, where)
                else:
                    y = _finite(path, _csv_numbers(path, frame[t], target, where, "target")[:, None], [target],
                                where, "target")[:, 0]
            yield Chunk(X, y, lines - header_lines - 1, where, codes=codes)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text CSV file; export it as CSV (UTF-8).") from None
    except pd.errors.ParserError as exc:
        m = _BAD_FIELDS.search(str(exc))
        if m:
            raise DataError(f"{path}: line {int(m.group(2)) + shift} has {m.group(3)} fields but "
                            f"the header has {len(header)}; fix that row.") from None
        raise DataError(f"{path}: malformed CSV ({str(exc).strip()[:80]}); fix the file's quoting.") from None
    except pd.errors.EmptyDataError:
        return
    finally:
        if source is not path:
            source.close()


def _csv_numbers(path: Path, col, name: str, where: Where, role: str) -> np.ndarray:
    """A parsed CSV column as float64; a text cell is an error naming its line."""
    import pandas as pd

    if col.dtype.kind in "biuf":
        return np.require(col.to_numpy(dtype=np.float64), requirements=["W"])  # pandas may hand a read-only view
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    text = np.isnan(values) & col.notna().to_numpy()
    if text.any():
        i = int(np.argmax(text))
        raise DataError(f"{path}: {where[i]}, {role} {name!r} is {str(col.iloc[i])[:40]!r}, not a number; "
                        f"{role}s must be numeric.")
    return values


def _finite(path: Path, X: np.ndarray, names, where: Where, role: str) -> np.ndarray:
    """X itself when every value is finite; otherwise an error naming the first bad cell."""
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        what = "empty or NaN" if math.isnan(X[i, j]) else "infinite (or beyond float64's range)"
        raise DataError(f"{path}: {where[i]}, {role} {names[j]!r} is {what}; remove or impute missing "
                        "(NaN/inf) values.")
    return X


def canonical_label(text: str) -> str:
    """A class label as text; numbers compare as numbers, so ``1``, ``1.0`` and ``01`` are the label ``1``."""
    text = text.strip()
    try:
        v = float(text)
    except ValueError:
        return text
    if not math.isfinite(v):
        return text
    return str(int(v)) if v == int(v) and abs(v) < 2**63 else repr(v)


def _labels_of(raw: np.ndarray, path: Path | None = None, target: str | None = None,
               where: Where | None = None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Canonical labels of the cells ``raw`` and their codes (see :func:`_labels_from_codes`); an empty cell
    names its row."""
    import pandas as pd

    codes, uniques = pd.factorize(raw)  # hashed in C: only the few distinct labels are looked at in Python
    return _labels_from_codes(codes, list(uniques), path, target, where)


def _labels_from_codes(codes: np.ndarray, uniques: list, path, target, where
                       ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """``canonical_label`` of each distinct cell, spread by ``codes`` (-1: a missing cell), and
    ``(codes, label per code)``: a consumer mapping labels to indices then looks up each distinct label once."""
    canon = np.empty(len(uniques) + 1, dtype=object)
    bad = np.zeros(len(uniques) + 1, dtype=bool)
    bad[-1] = True  # code -1 (a missing cell) indexes the last place
    for j, v in enumerate(uniques):
        if v is None or (isinstance(v, float) and math.isnan(v)) or str(v).strip() == "":
            bad[j] = True
        else:
            canon[j] = canonical_label(str(v))
    rows_bad = bad[codes]
    if rows_bad.any():
        i = int(np.argmax(rows_bad))
        raise DataError(f"{path}: {where[i]}, the target {target!r} is empty; every row needs a label.")
    return canon[codes], (codes, canon)


# ----- whole tables in memory -------------------------------------------------------------------------
def load_csv(path: str | Path, target: str | None, features: list[str] | tuple[str, ...] | None = None,
             task: str = "regression", classes: list[str] | None = None) -> Table:
    """Read a whole table (CSV with a header row, Parquet or ``.npy``) into a float64 :class:`Table`.

    Parameters
    ----------
    path : the table file (its kind is told by its content).
    target : name of the target column, or None to read features only (prediction).
    features : feature columns in order; None means every column except the target.
    task : "regression" (numeric target) or "classification" (any labels, e.g. strings).
    classes : for classification, the known label list (from a trained model); a label outside it
        is an error. None builds it from the data, sorted (numerically when every label is a number).

    Raises
    ------
    DataError
        Missing file or column, text/NaN/inf in a cell, wrong row length, fewer rows than features.
    """
    path = Path(path)
    labels = task != "regression"
    width, capacity = len(read_header(path, with_target=target is not None)), _row_capacity(path)
    chunk_rows = max(64, min(1_000_000 // width, capacity // 8))  # at most 8 MB and an eighth of the table
    names, chunks = read_chunks(path, target, features, chunk_rows, labels=labels)
    # small chunks (about 8 MB) are copied into one array sized by an upper bound on the rows, not
    # concatenated at the end (which holds every chunk and the result at once): peak stays near the result
    buf, n, ys = np.empty((capacity, len(names))), 0, []
    for c in chunks:
        if n + len(c.X) > len(buf):  # cannot happen for a bound that holds; stay correct anyway
            buf = np.concatenate([buf[:n], np.empty((n + len(c.X), len(names)))])
        buf[n:n + len(c.X)] = c.X
        n += len(c.X)
        ys.append(c.y)
    if n == 0:
        raise DataError(f"{path}: the file has a header but no data rows.")
    X = torch.from_numpy(buf[:n].copy() if n < len(buf) // 2 else buf[:n])  # a mostly-blank file: shrink
    del buf
    if target is not None and task == "regression" and len(X) <= len(names):
        raise DataError(f"{path}: {len(X)} rows for {len(names)} features; a linear model needs more rows than "
                        "features.")
    y, found = None, classes
    if target is not None:
        raw = np.concatenate(ys)
        if labels:
            y, found = _encode_labels(path, raw, target, classes)
        else:
            y = torch.from_numpy(raw).reshape(-1, 1)
    return Table(X, y, names, target, found)


def _row_capacity(path: Path) -> int:
    """An upper bound on the data rows: the line count of a CSV, the stored row count otherwise."""
    kind = table_kind(path)
    if kind == "parquet":
        return _parquet(path).metadata.num_rows
    if kind == "npy":
        return len(_open_npy(path))
    lines = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
    return lines + 1


def _encode_labels(path: Path, raw: np.ndarray, target: str,
                   classes: list[str] | None) -> tuple[torch.Tensor, list[str]]:
    if classes is None:
        uniq = set(raw.tolist())
        numeric = all(is_number(v) for v in uniq)
        classes = sorted(uniq, key=float) if numeric else sorted(uniq)
    lookup = {canonical_label(str(c)): i for i, c in enumerate(classes)}
    unseen = sorted(set(raw.tolist()) - set(lookup))
    if unseen:
        raise DataError(f"{path}: label(s) {unseen[:5]} in {target!r} were not seen in training "
                        f"(known: {list(classes)[:10]}); the model cannot predict new classes.")
    return torch.tensor([lookup[v] for v in raw.tolist()], dtype=torch.int64), list(classes)


# ----- standardization --------------------------------------------------------------------------------
def column_stats(X: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Column means and standard deviations in float64, computed stably; a constant column gets std 1.

    Stable: the spread is measured after centring and dividing by the column's largest deviation, so
    neither a large offset (1.7e9 + small changes) nor huge values (1e200) lose or overflow anything.
    A column is constant when its deviations vanish relative to its own magnitude (below float64's
    resolution of the values, ``|mean| * 4 eps``); there is no absolute cut-off.
    """
    if isinstance(X, np.ndarray):  # read in place; torch refuses read-only views, which are copied
        X = torch.from_numpy(X if X.flags.writeable else np.array(X))
    if X.dim() == 1:
        X = X.reshape(-1, 1)
    n, d = X.shape
    if n == 0:
        return torch.zeros(d, dtype=torch.float64), torch.ones(d, dtype=torch.float64)
    # Three passes over row blocks, each copied (as float64) into one reused buffer: no table-sized
    # temporary, and no fresh block per step either (fresh memory costs more in page faults than the
    # arithmetic); the caller's X is never written.
    step = max(1, (1 << 22) // max(d, 1))
    buf = torch.empty((min(step, n), d), dtype=torch.float64)

    def blocks():
        for i in range(0, n, step):
            block = buf[:min(step, n - i)]
            block.copy_(X[i:i + step])
            yield block

    mean = sum(b.sum(0) for b in blocks()) / n
    scale, correction = torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    for b in blocks():
        dev = b.sub_(mean)
        scale = torch.maximum(scale, torch.maximum(dev.amax(0), -dev.amin(0)))  # the largest |deviation|
        correction += dev.sum(0)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    # second centring pass: removes the rounding error of the first mean (Higham's corrected two-pass)
    mean = mean + correction / n
    std = safe * (sum(b.sub_(mean).div_(safe).square_().sum(0) for b in blocks()) / n).sqrt()
    constant = ~(std > 4 * torch.finfo(torch.float64).eps * mean.abs()) | (scale == 0) | ~torch.isfinite(std)
    return mean, torch.where(constant, torch.ones_like(std), std)


class Standardizer:
    """Per-column ``(x - mean) / std`` with float64 statistics fitted on training rows only.

    A constant column (see :func:`column_stats`) gets std 1 so it maps to 0 instead of dividing by
    zero. The statistics are saved with the model (float64) so prediction applies exactly the same
    transform; the transform is computed in float64 and returned in the input's dtype.
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean.to(torch.float64), std.to(torch.float64)

    @classmethod
    def fit(cls, X: torch.Tensor) -> Standardizer:
        return cls(*column_stats(X))

    def transform(self, X: torch.Tensor) -> torch.Tensor:
        return ((X.to(torch.float64) - self.mean) / self.std).to(X.dtype)

    def inverse(self, Z: torch.Tensor) -> torch.Tensor:
        return (Z.to(torch.float64) * self.std + self.mean).to(Z.dtype)
