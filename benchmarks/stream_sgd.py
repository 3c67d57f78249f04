"""SGD beyond memory (``train ... --stream``): peak RSS, throughput vs a bare read pass, accuracy vs peers.

For softmax regression (10 classes from a known linear model plus Gumbel noise) and linear
regression on generated tables (d = 100 float features; CSV, and Parquet for the larger file):

* one streamed epoch of ``linearnet train --impl analytic --stream`` (the fast path: the chapter's
  gradients, no autograd) in a fresh process: peak RSS on a 10x smaller
  and the full file (target: < 500 MB and within 10%), and rows/s of the training epoch against
  a bare read pass of the same file with the same reader and chunks, set up as the training pass
  reads (target: >= 80%). For Parquet that reader decodes in its own thread, since the steps take
  the other core; a pass letting pyarrow decode on every core is shown beside it;
* the final validation metric against an in-memory run on the same rows (target: accuracy within
  1%, RMSE within 2%), on one separate validation file for every tool;
* scikit-learn's ``SGDClassifier`` / ``SGDRegressor`` ``partial_fit`` over the same chunks (read by
  the same reader, standardized with the same statistics), and Vowpal Wabbit (PyPI
  ``vowpalwabbit``) on the same rows converted once to its text format (conversion not timed),
  both for one pass.

``--quick`` uses 4,000 and 40,000 rows: about one shuffle buffer, which fills before the first step and
drains after the last read, so reading and stepping barely overlap there and its epoch / read ratio
says little; the full sizes are many buffers.

Environment: ``LINEARNET_STREAM_SGD_ROWS`` sets the larger file's rows (default 2,500,000; the smaller
is a tenth), and ``LINEARNET_BENCH_DATA=DIR`` keeps the generated files (about 2.3 GB of CSV, as much
Parquet and VW text per model at full size) in DIR, so a second run reuses them instead of writing
them again.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .harness import Report
from .streaming import _peak_rss_run

CLASSES = 10


def _generate(rows: int, d: int, task: str, seed: int):
    """Blocks of (X, y) from one fixed linear model (the seed only changes the rows)."""
    model = np.random.default_rng(12345)
    W = model.normal(size=(d, CLASSES)) * 3 / np.sqrt(d)
    w = model.normal(size=d)
    rng = np.random.default_rng(seed)
    for i in range(0, rows, 100_000):
        m = min(100_000, rows - i)
        X = rng.normal(size=(m, d)).round(6)
        if task == "softmax":
            y = (X @ W + rng.gumbel(size=(m, CLASSES))).argmax(1)
        else:
            y = X @ w + 3 + rng.normal(0, 1.0, m)
        yield X, y


def _write(path: Path, rows: int, d: int, task: str, seed: int, parquet: Path | None = None,
           vw: Path | None = None) -> None:
    """The table as CSV (and optionally Parquet, and Vowpal Wabbit's text format) in 100k-row blocks.

    The files are written under temporary names and renamed at the end, so a cached set is complete.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    final = [p for p in (path, parquet, vw) if p is not None]
    path, parquet, vw = (None if p is None else p.with_name(p.name + ".part") for p in (path, parquet, vw))

    names = [f"x{i}" for i in range(d)] + ["y"]
    ytype = pa.int64() if task == "softmax" else pa.float64()
    schema = pa.schema([*[(n, pa.float64()) for n in names[:-1]], ("y", ytype)])
    pw = pq.ParquetWriter(str(parquet), schema) if parquet else None
    vf = open(vw, "wb") if vw else None
    with pacsv.CSVWriter(str(path), schema) as writer:
        for X, y in _generate(rows, d, task, seed):
            table = pa.table(dict(zip(names, [*X.T, y])), schema=schema)
            writer.write_table(table)
            if pw:
                pw.write_table(table)
            if vf:
                _write_vw(vf, X, y + 1 if task == "softmax" else y)  # VW's classes are 1..k
    if pw:
        pw.close()
    if vf:
        vf.close()
    for p, done in zip([p for p in (path, parquet, vw) if p is not None], final):
        p.rename(done)


def _write_vw(fh, X: np.ndarray, label: np.ndarray) -> None:
    """Rows ``label | 0:x0 1:x1 ...`` formatted by pyarrow's compute kernels (C, not a Python loop per
    cell: 2.5M x 100 cells take about a minute, not a quarter of an hour), values exactly as in the CSV."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    cells = [pc.binary_join_element_wise(pa.scalar(f"{j}:"), pc.cast(pa.array(X[:, j]), pa.string()), "")
             for j in range(X.shape[1])]
    line = pc.binary_join_element_wise(pc.cast(pa.array(label), pa.string()), pa.scalar("|"), *cells, " ")
    pacsv.write_csv(pa.table({"line": line}), fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def _files(folder: Path, cache: bool, model: str, rows: int, d: int, seed: int, parquet: bool,
           vw: bool) -> tuple[Path, Path | None, Path | None]:
    """The CSV (and Parquet, VW text) of a generated table, written unless ``cache`` already holds them."""
    stem = folder / f"stream-sgd-{model}-{rows}x{d}-seed{seed}"
    csv, pq_, vw_ = stem.with_suffix(".csv"), stem.with_suffix(".parquet"), stem.with_suffix(".vw")
    want = [csv] + ([pq_] if parquet else []) + ([vw_] if vw else [])
    if not (cache and all(p.is_file() for p in want)):
        _write(csv, rows, d, model, seed, parquet=pq_ if parquet else None, vw=vw_ if vw else None)
    return csv, (pq_ if parquet else None), (vw_ if vw else None)


def _read_pass(path: Path, chunk_rows: int, labels: bool, threaded: bool = False) -> tuple[float, int]:
    """Seconds and rows of a bare pass of the reader (what every streamed epoch must do anyway), set up as
    the training pass reads (``threaded=False``: Parquet decoded in the reader's thread) or on all cores."""
    from linearnet.scale.streaming import iter_table_chunks

    def chunks():
        return iter_table_chunks(path, "y", None, chunk_rows, labels=labels, threaded=threaded)[1]

    next(chunks())  # warm, as the epoch after the scan is
    start = time.perf_counter()
    n = 0
    for c in chunks():
        n += len(c.rows)
    return time.perf_counter() - start, n


def _linearnet(model: str, data: Path, val: Path, out: Path, tmp: str, stream: bool, args: list[str]) -> dict:
    # No validation inside the timed run (its pass would count in the epoch's seconds): the model
    # file is scored on the validation table afterwards.
    # One torch thread (--stream's default, given to the in-memory run too): a (256 x 100) step is too
    # small to share, and in a streamed run the other core reads ahead.
    cmd = ["train", model, "--data", str(data), "--val-fraction", "0", "--target", "y", "--epochs", "1",
           "--checkpoint-every", "0", "--no-progress", "--out", str(out), "--overwrite", "--threads", "1", *args]
    seconds, peak = _peak_rss_run(cmd + (["--stream"] if stream else []), tmp)
    metrics = json.loads((out / "metrics.json").read_text())
    epoch = float(metrics["train_seconds"])  # the training epoch alone (no validation set in the run)
    return {"wall_s": seconds, "peak_rss_mb": peak, "epoch_s": epoch, "metric": _score(out, val, model),
            "load_s": float(metrics.get("load_seconds", 0.0))}


def _score(run: Path, val: Path, model: str) -> float:
    """Validation accuracy or RMSE of a run's model file on ``val`` (its scalers applied, float64)."""
    from linearnet.data.tabular import read_chunks
    from linearnet.persist import load_model

    m = load_model(run)
    W, b = m.weight.double().numpy(), m.bias.double().numpy()
    x_mean = m.extras["x_mean"].numpy() if "x_mean" in m.extras else 0.0
    x_std = m.extras["x_std"].numpy() if "x_std" in m.extras else 1.0
    classify = model == "softmax"
    total, n = 0.0, 0
    for c in read_chunks(val, "y", None, 20_000, labels=classify)[1]:
        out = ((c.X - x_mean) / x_std) @ W.T + b
        if classify:
            total += float((np.asarray(m.meta["classes"], dtype=object)[out.argmax(1)] == c.y).sum())
        else:
            pred = out[:, 0] * (m.extras["y_std"].numpy() if "y_std" in m.extras else 1.0)
            pred = pred + (m.extras["y_mean"].numpy() if "y_mean" in m.extras else 0.0)
            total += float(((pred - c.y) ** 2).sum())
        n += len(c.rows)
    return total / n if classify else (total / n) ** 0.5


def _sklearn(path: Path, val: Path, model: str, chunk_rows: int) -> tuple[float, float]:
    """One pass of SGDClassifier/SGDRegressor.partial_fit over the reader's chunks: (seconds, metric)."""
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    from linearnet.data.moments import ColumnMoments
    from linearnet.scale.streaming import iter_table_chunks

    classify = model == "softmax"
    stats = ColumnMoments(100)
    for c in iter_table_chunks(path, "y", None, chunk_rows)[1]:  # the statistics pass, untimed as ours is
        stats.add(c.X)
    s = stats.standardizer()
    mean, std = s.mean.numpy(), s.std.numpy()
    est = SGDClassifier(loss="log_loss", random_state=0) if classify else SGDRegressor(random_state=0)
    start = time.perf_counter()
    for c in iter_table_chunks(path, "y", None, chunk_rows)[1]:
        Z = (c.X - mean) / std
        if classify:
            est.partial_fit(Z, c.y.astype(np.int64), classes=np.arange(CLASSES))
        else:
            est.partial_fit(Z, c.y)
    seconds = time.perf_counter() - start
    Xs, ys = [], []
    for c in iter_table_chunks(val, "y", None, chunk_rows)[1]:
        Xs.append((c.X - mean) / std)
        ys.append(c.y)
    Xv, yv = np.concatenate(Xs), np.concatenate(ys)
    pred = est.predict(Xv)
    metric = float((pred == yv.astype(np.int64)).mean()) if classify else float(np.sqrt(((pred - yv) ** 2).mean()))
    return seconds, metric


def _vw(train: Path, val: Path, model: str, tmp: str) -> tuple[float, float] | None:
    """One pass of Vowpal Wabbit on its text file: (seconds, metric), or None when it is not installed."""
    try:
        from vowpalwabbit import Workspace
    except ImportError:
        return None
    opts = ["--oaa", str(CLASSES)] if model == "softmax" else []
    weights, preds = os.path.join(tmp, "vw.model"), os.path.join(tmp, "vw.pred")
    start = time.perf_counter()
    Workspace(arg_list=["-d", str(train), "-f", weights, "--quiet", *opts]).finish()
    seconds = time.perf_counter() - start
    Workspace(arg_list=["-d", str(val), "-t", "-i", weights, "-p", preds, "--quiet"]).finish()
    pred = np.loadtxt(preds, usecols=0)
    truth = np.array([float(line.split(" ", 1)[0]) for line in open(val)])
    metric = float((pred == truth).mean()) if model == "softmax" else float(np.sqrt(((pred - truth) ** 2).mean()))
    return seconds, metric


def bench_stream_sgd(rep: Report, quick: bool) -> None:
    d = 100
    big = 40_000 if quick else int(os.environ.get("LINEARNET_STREAM_SGD_ROWS", 2_500_000))
    small = big // 10
    val_rows = 5_000 if quick else 50_000
    from linearnet.scale.sgd_stream import default_stream_chunk_rows

    chunk_rows = default_stream_chunk_rows(d)  # --stream's default chunk, for the read pass and scikit-learn too
    lines = [f"**SGD beyond memory (`--stream`), one epoch, d = {d}, `--threads 1`** (targets: peak "
             "RSS < 500 MB and within 10% between the sizes; epoch rows/s >= 80% of a bare read pass; "
             "validation metric within 1% (accuracy) / 2% (RMSE) of in memory; faster than scikit-learn "
             "partial_fit and Vowpal Wabbit at the same metric)", "",
             "| model | file | rows | peak RSS MB | epoch rows/s | read-pass rows/s | epoch / read "
             "| read pass on all cores | epoch / that | val metric |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    data: dict = {}
    cache = os.environ.get("LINEARNET_BENCH_DATA")
    if cache:
        Path(cache).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.environ.get("LINEARNET_BENCH_TMP")) as tmp:
        root = Path(tmp)
        folder = Path(cache) if cache else root
        for model, args in (("softmax", ["--impl", "analytic", "--lr", "0.1", "--batch-size", "256"]),
                            ("linreg", ["--impl", "analytic", "--lr", "0.03", "--batch-size", "256"])):
            task = {}
            val, _, val_vw = _files(folder, bool(cache), model, val_rows, d, 99, parquet=False, vw=True)
            for rows in (small, big):
                last = rows == big
                csv, pq_, vw = _files(folder, bool(cache), model, rows, d, 1, parquet=last, vw=last)
                files = [("CSV", csv)] + ([("Parquet", pq_)] if last else [])
                for kind, path in files:
                    run = _linearnet(model, path, val, root / "run", tmp, True, args)
                    read_s, n = _read_pass(path, chunk_rows, model == "softmax")
                    run.update(rows=rows, file=kind, read_rows_per_s=n / read_s, epoch_rows_per_s=rows / run["epoch_s"])
                    all_cores = "| (pandas parses in one thread) | "
                    if kind == "Parquet":  # pyarrow decodes on every core when let
                        read_s, n = _read_pass(path, chunk_rows, model == "softmax", threaded=True)
                        run["read_all_cores_rows_per_s"] = n / read_s
                        all_cores = (f"| {n / read_s:,.0f} | {run['epoch_rows_per_s'] * read_s / n:.2f} | ")
                    task[f"{kind}-{rows}"] = run
                    lines.append(f"| {model} | {kind} | {rows:,} | {run['peak_rss_mb']:.0f} | "
                                 f"{run['epoch_rows_per_s']:,.0f} | {run['read_rows_per_s']:,.0f} | "
                                 f"{run['epoch_rows_per_s'] / run['read_rows_per_s']:.2f} {all_cores}"
                                 f"{run['metric']:.4f} |")
                if last:
                    mem = _linearnet(model, csv, val, root / "run", tmp, False, args)
                    sk_s, sk_metric = _sklearn(csv, val, model, chunk_rows)
                    vw_res = _vw(vw, val_vw, model, tmp)
                    task.update(in_memory=mem, sklearn={"seconds": sk_s, "metric": sk_metric},
                                vw=None if vw_res is None else {"seconds": vw_res[0], "metric": vw_res[1]})
                    if not cache:
                        vw.unlink()
                        pq_.unlink()
                if not cache:
                    csv.unlink()
            stream = task[f"CSV-{big}"]
            task["peak_ratio"] = stream["peak_rss_mb"] / task[f"CSV-{small}"]["peak_rss_mb"]
            data[model] = task
        lines += ["", "| model | tool (one pass over the larger CSV's rows) | seconds | val metric |",
                  "|---|---|---|---|"]
        for model, task in data.items():
            name = "accuracy" if model == "softmax" else "RMSE"
            stream = task[f"CSV-{big}"]
            lines.append(f"| {model} | linearnet --stream (epoch) | {stream['epoch_s']:.2f} | {name} "
                         f"{stream['metric']:.4f} |")
            lines.append(f"| {model} | linearnet in memory (epoch) | {task['in_memory']['epoch_s']:.2f} | {name} "
                         f"{task['in_memory']['metric']:.4f} (peak RSS {task['in_memory']['peak_rss_mb']:.0f} MB) |")
            lines.append(f"| {model} | scikit-learn partial_fit | {task['sklearn']['seconds']:.2f} | {name} "
                         f"{task['sklearn']['metric']:.4f} |")
            vw = task["vw"]
            lines.append(f"| {model} | Vowpal Wabbit | " + ("not installed | |" if vw is None else
                                                            f"{vw['seconds']:.2f} | {name} {vw['metric']:.4f} |"))
        lines.append("\npeak RSS ratio, larger / smaller CSV: " + ", ".join(
            f"{model} {task['peak_ratio']:.3f}" for model, task in data.items()))
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    rep.markdown.append(text)
    rep.data["stream_sgd"] = data
