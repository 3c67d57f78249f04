"""SGD beyond memory: minibatches streamed from files through a shuffle buffer (``train ... --stream``).

The rows are read in chunks by the one table reader (via
:func:`~linearnet.scale.streaming.iter_table_chunks`), so memory stays at a few chunks plus the
shuffle buffer whatever the file size. One streamed pass first gathers the standardization
statistics (Chan's merge of per-chunk means and sums of squares, float64) and the class set; then
:class:`StreamBatches` serves the training loop exactly like :class:`~linearnet.data.Batches`:
each epoch the file order is drawn from its generator, and every chunk passes through a buffer
of ``shuffle_buffer`` rows from which rows leave in random order. Validation rows are picked by
row index (or come from ``--val-data``), so no second copy of the data is made. Under torchrun
each rank reads its own files (a folder) or its own part of one file, and every row is trained on
once per epoch even when the ranks hold unequal shares: with the analytic implementation a rank
out of rows joins the remaining steps with empty batches (its all-reduce sums the batch sizes, so
each step is one process's step on the union of the ranks' batches); with scratch and concise
(DDP) the ranks out of rows *join* (:class:`torch.distributed.algorithms.Join`) and shadow the
others' all-reduces, and DDP averages the gradients of the ranks still holding rows.
"""

from __future__ import annotations

import base64
import functools
import math
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import TrainConfig
from ..data.moments import ColumnMoments
from ..data.split import is_val_row
from ..data.tabular import Chunk, canonical_label, is_number
from ..errors import ConfigError, DataError
from .streaming import _files, default_chunk_rows, iter_table_chunks

BUFFER_CHUNKS = 4  # default shuffle buffer: this many default-sized streaming chunks


def default_stream_chunk_rows(num_features: int) -> int:
    """Half the closed form's chunk (about 8 MB of float64): one chunk is parsed while another trains."""
    return max(1024, default_chunk_rows(num_features) // 2)


@dataclass
class StreamStats:
    """What one pass over the training rows tells: names, row count, scalers and classes."""

    names: list[str]
    rows: int                         # training rows over every rank
    local_rows: int                   # this rank's training rows
    x: ColumnMoments
    y: ColumnMoments | None           # regression targets
    classes: list[str] | None         # classification: labels sorted as in memory


def sorted_classes(labels) -> list[str]:
    """Labels sorted numerically when every one is a number, else as text (as the in-memory reader does)."""
    labels = set(labels)
    numeric = all(is_number(v) for v in labels)
    return sorted(labels, key=float) if numeric else sorted(labels)


def scan(config: TrainConfig, rank: int = 0, world_size: int = 1, chunk_rows: int | None = None) -> StreamStats:
    """One streamed pass over this rank's training rows, merged over the ranks."""
    classify = config.model == "softmax"
    fraction = config.resolved_val_fraction
    names, chunks = iter_table_chunks(config.data, config.target, config.features, chunk_rows, rank, world_size,
                                      labels=classify)
    x = ColumnMoments(len(names))
    y = None if classify else ColumnMoments(1)
    labels: set[str] = set()
    for c in chunks:
        if classify:  # the classes come from every row, validation rows too, as in memory
            codes, per_code = c.codes  # each distinct label once, not a Python string per row
            labels.update(per_code[np.bincount(codes, minlength=len(per_code)) > 0].tolist())
        train = ~is_val_row(c.rows, fraction) if fraction > 0 else slice(None)
        x.add(c.X[train])
        if not classify:
            y.add(c.y[train, None])
    local = x.n
    if world_size > 1:
        x, y, labels = _merge_ranks(x, y, labels, world_size)
    return StreamStats(names, x.n, local, x, y, sorted_classes(labels) if classify else None)


def _merge_ranks(x: ColumnMoments, y: ColumnMoments | None, labels: set[str], world: int):
    """Every rank's statistics merged in rank order, so all ranks hold the same numbers."""
    import torch.distributed as dist

    def gather(m: ColumnMoments) -> ColumnMoments:
        parts = [torch.empty_like(m.to_tensor()) for _ in range(world)]
        dist.all_gather(parts, m.to_tensor())
        d = len(m.mean)
        out = ColumnMoments(d)
        for p in parts:
            v = p.numpy()
            out.merge(int(v[0]), v[1:1 + d], v[1 + d:])
        return out

    everyone: list = [None] * world
    dist.all_gather_object(everyone, sorted(labels))  # label strings only (the file's own cells)
    return gather(x), (gather(y) if y is not None else None), set().union(*map(set, everyone))


class StreamBatches:
    """Iterable of ``(X, y)`` minibatches streamed from a table file or folder, like :class:`Batches`.

    Parameters
    ----------
    chunks : ``chunks(order)`` returns this rank's :class:`Chunk` s for one pass, the file order drawn
        from the generator ``order`` (None keeps it).
    transform : turns a chunk into model-ready tensors ``(X float32 (n, d), y)``.
    batch_size : rows per batch on this rank.
    shuffle_buffer : rows held back and mixed; each row leaves the buffer at a uniformly random
        place. 0 (evaluation) passes the chunks through in order.
    seed : seeds the generator (file order and buffer) that the checkpoint saves and restores.
    pad_to : after its own rows, yield empty batches (``empty``) up to this many batches per pass, so
        a rank with fewer rows keeps joining the collectives of the others (None: no padding).
    empty : ``(X, y)`` with zero rows, the padding batch.

    For checkpoints inside an epoch set ``on_boundary(state, tensors)`` and ``boundary_rows``: it is
    called at the first chunk end after every ``boundary_rows`` rows, when every batch served so far
    has been trained on, with what :meth:`restore` needs to continue the pass identically (the
    position, the buffered rows, the file order's seed state and the epoch's running sums in
    ``tally``, which the epoch routine keeps current; the generator itself is saved beside it).
    """

    def __init__(self, chunks: Callable[[torch.Generator | None], Iterator[Chunk]],
                 transform: Callable[[Chunk], tuple[torch.Tensor, torch.Tensor]], batch_size: int,
                 shuffle_buffer: int = 0, seed: int = 0, device: str | torch.device = "cpu",
                 pad_to: int | None = None, files: list[Path] | None = None,
                 empty: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.chunks, self.transform = chunks, transform
        self.batch_size, self.shuffle_buffer = batch_size, shuffle_buffer
        self.shuffle = shuffle_buffer > 0
        self.generator = torch.Generator().manual_seed(seed)
        self.device = torch.device(device)
        self.pad_to, self.empty = pad_to, empty
        self.files = files or []
        self.epoch = 0  # passes started; saved with the checkpoint beside the generator's state
        self.tally: dict = {}  # the running pass's sums (loss, correct, n), kept by run_epoch
        self.on_boundary: Callable[[dict, dict], None] | None = None
        self.boundary_rows = 0
        self._resume: dict | None = None  # a pass to continue mid-way (from restore)

    def state(self) -> dict:
        """The stream position for a checkpoint taken between epochs (the generator is saved beside it)."""
        return {"epoch": self.epoch, "file": 0, "offset": 0,
                "files": [[str(f), _size(f)] for f in self.files]}

    def restore(self, state: dict, tensors: dict[str, torch.Tensor] | None = None) -> None:
        """Continue from a checkpoint's position (``tensors``: the buffered rows of a checkpoint taken
        inside an epoch); the files must be the ones it was taken over."""
        now = [[str(f), _size(f)] for f in self.files]
        if state.get("files", now) != now:
            raise DataError(f"{self.files[0] if self.files else 'the data'}: the data files changed since the "
                            "checkpoint (names or sizes differ); resume with the same files or start again.")
        self.epoch = int(state["epoch"])
        if "inside" in state:
            self._resume = {**state["inside"], **{k[7:]: v for k, v in (tensors or {}).items()
                                                  if k.startswith("stream.")}}
            self.tally.clear()
            self.tally.update(state["inside"]["tally"])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        gone = [f for f in self.files if not f.is_file()]
        if gone:  # a folder is listed afresh each pass: a vanished file would otherwise be skipped silently
            raise DataError(f"{gone[0]}: file not found (it was there when training started); restore it, or "
                            "start again without it.")
        g = self.generator if self.shuffle else None
        resume, self._resume = self._resume, None
        if resume is None:  # (the tally was emptied at the end of the last pass; the epoch routine fills it)
            self.epoch += 1
        steps = 0
        for X, y in self._rows(g, resume):
            steps += 1
            if self.device.type != "cpu":
                X, y = X.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            yield X, y
        if self.pad_to is not None and steps < self.pad_to:
            X, y = (t.to(self.device) for t in self.empty)
            for _ in range(self.pad_to - steps):
                yield X, y
        self.tally.clear()  # in place: the epoch routine holds this dict

    def _rows(self, g: torch.Generator | None, resume: dict | None
              ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches of ``batch_size`` rows (the last one shorter) out of the chunks, through the buffer."""
        bs, cap = self.batch_size, self.shuffle_buffer
        pool = ShuffleBuffer(cap, g) if g is not None else None
        carry: tuple[torch.Tensor, torch.Tensor] | None = None   # rows out of the buffer, fewer than a batch
        order, chunks = g, self.chunks
        if resume is not None:  # the file order drawn again from the pass's first state, then onwards
            order = torch.Generator().manual_seed(0)
            order.set_state(torch.frombuffer(bytearray(base64.b64decode(resume["order_state"])), dtype=torch.uint8))
            if "pool_X" in resume:  # (a checkpoint written before slots were reused has no "pool_free")
                pool = ShuffleBuffer(cap, g, (resume["pool_X"], resume["pool_y"]), resume.get("pool_free"))
            carry = (resume["carry_X"], resume["carry_y"]) if "carry_X" in resume else None
            chunks = functools.partial(self.chunks, start=tuple(resume["position"]))
        watch = self.on_boundary is not None and self.boundary_rows > 0
        first = base64.b64encode(g.get_state().numpy().tobytes()).decode() if watch and g is not None else None
        if resume is not None:
            first = resume["order_state"]
        since = 0
        for c in _read_ahead(chunks(order)):
            X, y = self.transform(c)
            position = c.position
            since += len(X)
            out: tuple[torch.Tensor, torch.Tensor] | None = (X, y)
            if pool is not None:
                out = pool.add(X, y)  # None while the buffer is still filling
            if out is not None:
                X, y = out
                start = 0  # the rows before are in the batch that completes the carry
                if carry is not None and len(carry[0]):
                    start = min(bs - len(carry[0]), len(X))
                    carry = (torch.cat([carry[0], X[:start]]), torch.cat([carry[1], y[:start]]))
                    if len(carry[0]) == bs:
                        yield carry
                        carry = None
                if carry is None or not len(carry[0]):  # whole batches are views of the chunk's rows: no copy
                    full = start + (len(X) - start) // bs * bs
                    for i in range(start, full, bs):
                        yield X[i:i + bs], y[i:i + bs]
                    carry = (X[full:], y[full:])
            if watch and since >= self.boundary_rows and position is not None and first is not None:
                # here every batch served so far has been trained on (perhaps none yet, the buffer still
                # filling): a consistent state
                since = 0
                state, tensors = _boundary_state(self.epoch, position, first, self.tally, pool, carry)
                self.on_boundary({**self.state(), **state}, tensors)
        if pool is not None and (rest := pool.drain()) is not None:  # the end of the pass, in random order
            carry = rest if carry is None else (torch.cat([carry[0], rest[0]]), torch.cat([carry[1], rest[1]]))
        if carry is not None:
            for i in range(0, len(carry[0]), bs):
                yield carry[0][i:i + bs], carry[1][i:i + bs]

    def single(self) -> StreamBatches:
        """The same source over every rank's rows, unshuffled (for a rank-local full evaluation)."""
        return StreamBatches(lambda _g: self.chunks(None, all_ranks=True), self.transform, self.batch_size,
                             device=self.device)


class ShuffleBuffer:
    """A buffer of ``cap`` rows through which a stream's rows leave in random order.

    :meth:`add` puts a chunk in; of the rows held then, those beyond ``cap`` leave, a uniform random
    sample in random order (None while the buffer fills). The rows live in one table whose slots are
    reused: the rows that leave are gathered out once, and the next chunk is written straight into
    the slots they freed, so each row is copied twice in all and memory stays at the buffer plus a chunk.
    """

    def __init__(self, cap: int, generator: torch.Generator,
                 rows: tuple[torch.Tensor, torch.Tensor] | None = None, free: torch.Tensor | None = None) -> None:
        self.cap, self.g = cap, generator
        self.rows = rows                      # (X, y): the slots, live rows and free ones
        self.free = free if free is not None else torch.empty(0, dtype=torch.int64)  # slots without a row

    def __len__(self) -> int:
        return 0 if self.rows is None else len(self.rows[0]) - len(self.free)

    def add(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Put a chunk's rows in; returns the rows leaving (all beyond ``cap``) or None."""
        if self.rows is None:
            self.rows = (X[:0], y[:0])
        k = min(len(self.free), len(X))
        if k:  # into freed slots, in place
            slots, self.free = self.free[:k], self.free[k:]
            for t, new in zip(self.rows, (X, y)):
                t.index_copy_(0, slots, new[:k])
        if k < len(X):  # the buffer grows (while it fills, or for a larger chunk)
            self.rows = tuple(torch.cat([t, new[k:]]) for t, new in zip(self.rows, (X, y)))
        m = len(self) - self.cap
        if m <= 0:
            return None
        leave = self._live_in_random_order()[:m]
        self.free = torch.cat([self.free, leave]) if len(self.free) else leave
        return tuple(t.index_select(0, leave) for t in self.rows)

    def drain(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Every row held, in random order (the end of a pass); the buffer is empty afterwards."""
        if self.rows is None:
            return None
        order = self._live_in_random_order()
        out = tuple(t.index_select(0, order) for t in self.rows)
        self.rows, self.free = None, self.free[:0]
        return out

    def _live_in_random_order(self) -> torch.Tensor:
        perm = torch.randperm(len(self), generator=self.g)
        if not len(self.free):
            return perm
        live = torch.ones(len(self.rows[0]), dtype=torch.bool)
        live[self.free] = False
        return live.nonzero().squeeze(1).index_select(0, perm)


class JoinedBatches:
    """``batches`` iterated inside DDP's :class:`~torch.distributed.algorithms.Join`: a rank out of rows
    shadows the others' all-reduces until every rank is done, so no rank's rows go unused. The
    gradients of a step are averaged over the ranks still holding rows, and at the end DDP copies the
    last rank's parameters to all."""

    def __init__(self, batches, ddp) -> None:
        self.batches, self.ddp = batches, ddp

    def __iter__(self):
        import warnings

        from torch.distributed.algorithms import Join

        with warnings.catch_warnings():  # the skew warning: unequal shares are expected here
            warnings.filterwarnings("ignore", message="Detected uneven input skew")
            try:
                with Join([self.ddp], divide_by_initial_world_size=False):
                    yield from self.batches
            finally:  # a Join leaves DDP in join mode, whose forward (evaluation too) then joins collectives
                Join([self.ddp], enable=False)

    def __getattr__(self, name):  # state(), restore(), device, tally ... of the wrapped source
        if name == "batches":  # not set yet (a copy being built): no recursion
            raise AttributeError(name)
        return getattr(self.batches, name)


_END = object()


def _read_ahead(chunks: Iterator[Chunk], depth: int = 2) -> Iterator[Chunk]:
    """The chunks, read and parsed in a background thread ``depth`` chunks ahead.

    Parsing (pandas, pyarrow; in C, mostly without the GIL) and the SGD steps then overlap on two
    cores. The transform (standardizing, float32, the labels' indices) runs with the steps, not here:
    the reader is the side that bounds the epoch (on Parquet too, since it reads whole column-major
    batches), so it is given nothing else to do. An error of the reader is raised here, in the
    caller's thread; a consumer that stops early releases the reader.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            put(_END)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)

    worker = threading.Thread(target=produce, name="linearnet-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _boundary_state(epoch: int, position, first: str, tally: dict, pool, carry) -> tuple[dict, dict]:
    """A stream state inside pass ``epoch`` (JSON) and its buffered rows (tensors), for a checkpoint."""
    sums = {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in tally.items() if k != "held"}
    outs, labels = tally.get("held", ((), ()))
    if outs:  # outputs the epoch routine holds to count together later
        from ..training.loop import held_hits

        sums["correct"] += int(held_hits(outs, labels))
    tensors = {}
    for name, pair in (("pool", pool.rows if pool is not None else None), ("carry", carry)):
        if pair is not None:
            tensors[f"stream.{name}_X"], tensors[f"stream.{name}_y"] = pair[0].clone(), pair[1].clone()
    if pool is not None and pool.rows is not None:
        tensors["stream.pool_free"] = pool.free.clone()
    return {"epoch": epoch, "inside": {"position": list(position), "order_state": first, "tally": sums}}, tensors


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


# ----- building the sources for a run ---------------------------------------------------------------
def prepare_stream(config: TrainConfig, common: dict, eval_batch: int):
    """A :class:`~linearnet.training.prepare.PreparedData` whose sources stream from ``config.data``."""
    from ..training.prepare import PreparedData, _check_classes

    if config.impl == "closed-form":
        raise ConfigError("the closed form streams on its own (--chunk-rows); --stream is for SGD (--impl scratch "
                          "or concise).")
    rank, world = common["rank"], common["world_size"]
    if config.checkpoint_rows and world > 1:
        raise ConfigError("--checkpoint-rows checkpoints one process's stream; under torchrun checkpoints are taken "
                          "between epochs (--checkpoint-every), so leave it out.")
    # the statistics pass reads the same chunks as training, so each rank's share (and step count) is the same
    chunk_rows = config.chunk_rows or default_stream_chunk_rows(len(iter_table_chunks(config.data, config.target,
                                                                                      config.features)[0]))
    stats = scan(config, rank, world, chunk_rows)
    names, d = stats.names, len(stats.names)
    task = "classification" if config.model == "softmax" else "regression"
    if task == "classification":
        _check_classes(config, stats.classes)
    elif stats.rows <= d:
        raise ConfigError(f"{config.data}: {stats.rows} training rows for {d} features; a linear model needs more "
                          "rows than features: lower --val-fraction or add rows.")
    x_scaler = stats.x.standardizer() if config.standardize else None
    y_scaler = stats.y.standardizer() if config.standardize and stats.y is not None else None
    lookup = {canonical_label(c): i for i, c in enumerate(stats.classes)} if stats.classes else None
    bs = max(1, config.batch_size // world)  # the global batch is shared among the ranks, as in memory

    def transform_for(what: str):
        def transform(c: Chunk) -> tuple[torch.Tensor, torch.Tensor]:
            X = torch.from_numpy(c.X)
            if x_scaler is not None:  # in place on the chunk's own float64 array: no chunk-sized temporaries
                X.sub_(x_scaler.mean).div_(x_scaler.std)
            X = torch.empty(X.shape, dtype=torch.float32).copy_(X)  # rows contiguous (a Parquet chunk's columns are)
            if lookup is not None:
                return X, encode_labels(c, lookup, config.target or "y", what)  # a .npy's target is its last column
            y = torch.tensor(c.y, dtype=torch.float64).reshape(-1, 1)  # a copy: pyarrow's may be read-only
            return X, (y_scaler.transform(y) if y_scaler else y).to(torch.float32)
        return transform

    def source(data: str, part: str, fraction: float, threaded: bool = True):
        def chunks(order, all_ranks: bool = False, start: tuple[int, int] = (0, 0)):
            r, w = (0, 1) if all_ranks else (rank, world)
            return iter_table_chunks(data, config.target, config.features, chunk_rows, r, w, labels=lookup is not None,
                                     part=part, val_fraction=fraction, order=order, start=start,
                                     threaded=threaded)[1]
        return chunks

    steps = math.ceil(stats.local_rows / bs)
    pad_to = None
    if world > 1 and config.impl == "analytic":  # ranks with fewer rows pad with empty batches (see above)
        import torch.distributed as dist

        most = torch.tensor([steps], dtype=torch.int64)
        dist.all_reduce(most, op=dist.ReduceOp.MAX)
        pad_to = steps = int(most)
    empty = (torch.empty(0, d), torch.empty(0, dtype=torch.int64) if lookup is not None else torch.empty(0, 1))
    buffer = config.shuffle_buffer or BUFFER_CHUNKS * chunk_rows  # 4 chunks of the size actually read
    device = common["device"]
    # the training pass decodes in its reader thread alone: the steps take the other core (measured:
    # arrow's own threads beside them make a Parquet epoch slower, benchmarks stream_sgd)
    train = StreamBatches(source(config.data, "train", config.resolved_val_fraction, threaded=False),
                          transform_for("training"),
                          bs, buffer, seed=config.seed + 1, device=device, pad_to=pad_to,
                          files=_files(Path(config.data)), empty=empty)
    train.boundary_rows = config.checkpoint_rows or 0
    evals = {}
    if config.val_data is not None:
        if names != (val_names := _val_names(config)):
            raise DataError(f"{config.val_data}: its features {val_names} differ from {names} in {config.data}; "
                            "the validation table needs the same columns.")
        evals["val"] = StreamBatches(source(config.val_data, "all", 0.0), transform_for("validation"), eval_batch,
                                     device=device)
    elif config.resolved_val_fraction > 0:
        evals["val"] = StreamBatches(source(config.data, "val", config.resolved_val_fraction),
                                     transform_for("validation"), eval_batch, device=device)
    k = 1 if task == "regression" else len(stats.classes)
    return PreparedData(task, train, evals, d, k, feature_names=names, classes=stats.classes, x_scaler=x_scaler,
                        y_scaler=y_scaler, source=str(config.data),
                        info={"train_rows": stats.rows, "streamed": True, "shuffle_buffer": buffer,
                              "chunk_rows": chunk_rows, "steps_per_epoch": steps})


def _val_names(config: TrainConfig) -> list[str]:
    return iter_table_chunks(config.val_data, config.target, config.features)[0]


def encode_labels(c: Chunk, lookup: dict[str, int], target: str, what: str) -> torch.Tensor:
    """Class indices of a chunk's labels; a label the statistics pass did not see names its file and row.

    Each distinct label is looked up once, through the codes the reader found (``Chunk.codes``)."""
    inverse, uniq = c.codes
    table = np.array([lookup.get(label, -1) for label in uniq], dtype=np.int64)
    index = table[inverse.reshape(-1)]
    if (unseen := index < 0).any():
        i = int(np.argmax(unseen))
        label = c.y[i]
        raise DataError(f"{c.path}: {c.where[i]}, the {what} label {label!r} in {target!r} is not among the "
                        f"training data's classes {list(lookup)[:10]}; a new class cannot be learned "
                        "mid-stream, so fix the row or retrain on data holding it.")
    return torch.from_numpy(index)
