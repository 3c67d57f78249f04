"""Benchmark harness: ``python -m benchmarks [NAME ...] [--quick] [--json OUT] [--update-readme]``.

Every benchmark runs its cases interleaved (A B A B ...) after a warm-up, prints min/median/max
seconds and the median ratio to its baseline measured in the same run, and records the machine.
``--update-readme`` writes the tables between the benchmark markers of README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent.parent / "README.md"


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cfg = torch.__config__.show()
    blas = "MKL" if "USE_MKL=ON" in cfg or "mkl" in cfg.lower() else "OpenBLAS/other"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "blas": blas, "torch threads": torch.get_num_threads()}


def measure(cases: dict, repeats: int, warmup: bool = True) -> dict[str, list[float]]:
    """Interleaved timings: one warm-up each, then ``repeats`` rounds of every case in turn."""
    if warmup:
        for fn in cases.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


class Report:
    """Collects markdown tables (printed as they come) and the raw numbers."""

    def __init__(self, figure_dir: Path | None = None) -> None:
        self.markdown: list[str] = []
        self.data: dict = {}
        self.figure_dir = figure_dir  # where plots go; None (no --update-readme) leaves the tree untouched

    def table(self, key: str, title: str, times: dict[str, list[float]], baseline: str,
              notes: dict[str, str] | None = None, target: str = "") -> dict:
        base = statistics.median(times[baseline])
        lines = [f"**{title}**" + (f" (target: {target})" if target else ""), "",
                 f"| case | min s | median s | max s | speed-up vs {baseline} | note |", "|---|---|---|---|---|---|"]
        rows = {}
        for name, ts in times.items():
            med = statistics.median(ts)
            rows[name] = {"min": min(ts), "median": med, "max": max(ts), "speedup": base / med}
            lines.append(f"| {name} | {min(ts):.4f} | {med:.4f} | {max(ts):.4f} | {base / med:.1f}x | "
                         f"{(notes or {}).get(name, '')} |")
        text = "\n".join(lines) + "\n"
        print("\n" + text, flush=True)
        self.markdown.append(text)
        self.data[key] = rows
        return rows


def _quiet():
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)


# ----- 1. read pass ---------------------------------------------------------------------------------
def bench_read(rep: Report, quick: bool) -> None:
    from linearnet.data import fashion_mnist as fm
    from linearnet.data.speed import chapter_loader

    ds = fm.load_fashion_mnist(progress=False)
    ours = fm.batches(ds, "train", 256)
    cases = {"chapter per-sample PIL pipeline, 0 workers": lambda: [None for _ in chapter_loader(ds, "train", 256)]}
    if not quick:
        loader4 = chapter_loader(ds, "train", 256, workers=4)
        cases["chapter per-sample PIL pipeline, 4 workers"] = lambda: [None for _ in loader4]
    cases["linearnet Batches"] = lambda: [None for _ in ours]
    rep.table("read", "Read pass over the 60,000 training images, batch 256, float32 batches",
              measure(cases, 1 if quick else 3), "chapter per-sample PIL pipeline, 0 workers", target=">= 20x")


# ----- 2./3. softmax epochs and the GEMM floor ---------------------------------------------------------
def bench_softmax(rep: Report, quick: bool) -> None:
    from linearnet.data import fashion_mnist as fm
    from linearnet.data.speed import chapter_loader
    from linearnet.models import build_learner, build_net
    from linearnet.training import fit

    ds = fm.load_fashion_mnist(progress=False)
    epochs = 2 if quick else 10
    accs: dict[str, float] = {}

    def train(name, impl, train_batches, test_batches):
        def run():
            net = build_net("softmax", impl, 784, 10, seed=0)
            hist = fit(build_learner(net, "softmax", impl, 0.1), train_batches(), epochs,
                       eval_sets={"test": test_batches()}, classify=True)
            accs[name] = hist[-1]["test_acc"]
        return run

    W = torch.randn(10, 784)
    Xf = ds.train_images.reshape(-1, 784)
    Xtest = ds.test_images.reshape(-1, 784)

    def floor():
        """The bare work, each product in its fastest layout: per step the gather, uint8 -> float,
        the forward product and the weight-gradient product; per epoch the test forward product."""
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(60000, generator=g)
            for i in range(0, 60000, 256):
                X = Xf.index_select(0, perm[i:i + 256]).to(torch.float32).mul_(1 / 255)
                G = torch.mm(W, X.t())  # (10, n): MKL is ~3x faster here than for the (n, 10) product
                G @ X
            torch.mm(W, Xtest.to(torch.float32).mul_(1 / 255).t())

    def framework_minimum():
        """The concise recipe with nothing of ours: gather, zero_grad, forward, loss, backward, step."""
        net = build_net("softmax", "concise", 784, 10, seed=0)
        loss, trainer = torch.nn.CrossEntropyLoss(), torch.optim.SGD(net.parameters(), lr=0.1)
        g = torch.Generator().manual_seed(0)
        for _ in range(epochs):
            perm = torch.randperm(60000, generator=g)
            for i in range(0, 60000, 256):
                idx = perm[i:i + 256]
                X = Xf.index_select(0, idx).to(torch.float32).mul_(1 / 255)
                trainer.zero_grad()
                loss(net(X), ds.train_labels.index_select(0, idx)).backward()
                trainer.step()
            with torch.no_grad():
                net(Xtest.to(torch.float32).mul_(1 / 255))

    cases = {
        "chapter per-sample pipeline (concise model)": train(
            "chapter per-sample pipeline (concise model)", "concise",
            lambda: chapter_loader(ds, "train", 256, seed=0), lambda: chapter_loader(ds, "test", 256, seed=None)),
        "linearnet scratch": train("linearnet scratch", "scratch", lambda: fm.batches(ds, "train", 256, seed=0),
                                   lambda: fm.batches(ds, "test", 10000)),
        "linearnet concise": train("linearnet concise", "concise", lambda: fm.batches(ds, "train", 256, seed=0),
                                   lambda: fm.batches(ds, "test", 10000)),
        "bare concise recipe, no bookkeeping": framework_minimum,
        "bare gather + GEMM floor": floor,
    }
    times = measure(cases, 1 if quick else 3, warmup=not quick)
    rows = rep.table("softmax", f"Softmax regression, {epochs} epochs, lr 0.1, batch 256, test evaluation every epoch",
                     times, "chapter per-sample pipeline (concise model)",
                     {k: f"test acc {v:.4f}" for k, v in accs.items()},
                     target=">= 25x with equal accuracy; within 3x of the floor")
    floor_med = rows["bare gather + GEMM floor"]["median"]
    for name in ("linearnet scratch", "linearnet concise", "bare concise recipe, no bookkeeping"):
        rows[name]["x_floor"] = rows[name]["median"] / floor_med
    rep.data["softmax"]["accuracy"] = accs
    line = "time / floor: " + ", ".join(f"{k} {v['x_floor']:.2f}x" for k, v in rows.items() if "x_floor" in v)
    print(line)
    rep.markdown[-1] += f"\n{line}\n"


# ----- accuracy of the documented configurations ------------------------------------------------------
BEST_SOFTMAX = {"epochs": 50, "lr": 0.05, "batch_size": 128, "lr_schedule": "cosine", "normalize": True}


def bench_accuracy(rep: Report, quick: bool) -> None:
    from linearnet import TrainConfig, train_run

    configs = {"chapter scratch (10 epochs)": ("scratch", {}), "chapter concise (10 epochs)": ("concise", {}),
               "best documented (concise)": ("concise", BEST_SOFTMAX)}
    if quick:
        configs = {"chapter concise (2 epochs)": ("concise", {"epochs": 2})}
    lines = ["**Softmax test accuracy on Fashion-MNIST** (targets: chapter config >= 0.82, best >= 0.845)", "",
             "| configuration | test acc | train seconds |", "|---|---|---|"]
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (impl, extra) in configs.items():
            r = train_run(TrainConfig.create("softmax", impl=impl, progress=False, **extra), Path(tmp) / "run",
                          overwrite=True, log=lambda s: None, live=False, write_figures=False)
            out[name] = {"test_acc": r.metrics["test_acc"], "train_seconds": r.metrics["train_seconds"]}
            lines.append(f"| {name} | {r.metrics['test_acc']:.4f} | {r.metrics['train_seconds']:.2f} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    rep.markdown.append(text)
    rep.data["accuracy"] = out


# ----- 4. accuracy/time frontier against scikit-learn -----------------------------------------------------
BEST_ESTIMATOR = {"lr": 0.2, "batch_size": 512, "max_iter": 12, "lr_schedule": "cosine", "random_state": 0}


def bench_sklearn(rep: Report, quick: bool) -> None:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    from linearnet.data import fashion_mnist as fm
    from linearnet.sklearn import SoftmaxRegression

    ds = fm.load_fashion_mnist(progress=False)
    n = 10000 if quick else 60000
    X = ds.train_images[:n].reshape(n, -1).numpy() / 255.0
    y = ds.train_labels[:n].numpy()
    Xt, yt = ds.test_images.reshape(10000, -1).numpy() / 255.0, ds.test_labels.numpy()
    models = {"sklearn LogisticRegression()": LogisticRegression,
              "sklearn SGDClassifier(loss='log_loss')": lambda: SGDClassifier(loss="log_loss", random_state=0),
              "linearnet SoftmaxRegression (best documented)": lambda: SoftmaxRegression(**BEST_ESTIMATOR)}
    accs: dict[str, float] = {}

    def case(name, make):
        def run():
            est = make().fit(X, y)
            accs[name] = float((est.predict(Xt) == yt).mean())
        return run

    SoftmaxRegression(max_iter=1).fit(X[:512], y[:512])  # warm torch up once; scikit-learn needs none
    with warnings.catch_warnings():
        _quiet()
        times = measure({k: case(k, v) for k, v in models.items()}, 1, warmup=False)
    rep.table("sklearn", f"Fashion-MNIST accuracy and fit time, {n} training images scaled to [0, 1]", times,
              "sklearn LogisticRegression()", {k: f"test acc {v:.4f}" for k, v in accs.items()},
              target="accuracy >= LogisticRegression's at <= 1/10 of its time")
    rep.data["sklearn"]["accuracy"] = accs


# ----- 5. least squares: time, accuracy, peak memory ---------------------------------------------------------
_LSQ_CHILD = r"""
import json, sys, time, numpy as np, torch
name, n, cond, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
d = 100
if cond > 1:
    U, _ = np.linalg.qr(rng.normal(size=(n, d)))
    V, _ = np.linalg.qr(rng.normal(size=(d, d)))
    X = (U * np.logspace(0, -np.log10(cond), d)) @ V.T * np.sqrt(n)
else:
    X = rng.normal(size=(n, d))
w_true = rng.normal(size=d)
# ill-conditioned: noise-free targets, so the exact answer is w_true and each method's error is its own
y = X @ w_true + 3 + (rng.normal(0, 0.1, n) if cond <= 1 else 0)
np.save(out.replace(".npy", "-true.npy"), w_true)
from sklearn.linear_model import LinearRegression as SkLR  # imports happen before the clock starts
from linearnet.sklearn import LinearRegression as OurLR
def vmhwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
base = vmhwm()
t = time.perf_counter()
if name == "sklearn":
    coef = SkLR().fit(X, y).coef_
elif name == "lstsq":
    coef = np.linalg.lstsq(np.hstack([X, np.ones((n, 1))]), y, rcond=1e-15)[0][:-1]
elif name == "normal-equations":
    A = np.hstack([X, np.ones((n, 1))])
    coef = np.linalg.solve(A.T @ A, A.T @ y)[:-1]
else:
    coef = OurLR().fit(X, y).coef_
seconds = time.perf_counter() - t
np.save(out, coef)
print(json.dumps({"seconds": seconds, "peak_extra_mb": vmhwm() - base}))
"""


def _lsq_case(name: str, n: int, cond: float, tmp: str) -> dict:
    out = os.path.join(tmp, f"{name}-{cond}.npy")
    proc = subprocess.run([sys.executable, "-c", _LSQ_CHILD, name, str(n), str(cond), out], capture_output=True,
                          text=True, check=True)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["coef"] = np.load(out)
    return res


def bench_closed_form(rep: Report, quick: bool) -> None:
    n = 100_000 if quick else 1_000_000
    names = {"sklearn": "sklearn LinearRegression", "lstsq": "numpy lstsq (QR/SVD)",
             "linearnet": "linearnet closed form"}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cond in (1.0, 1e10):
            cases = dict(names)
            if cond > 1:
                cases["normal-equations"] = "plain normal equations (np.linalg.solve)"
            times: dict[str, list[float]] = {label: [] for label in cases.values()}
            notes = {}
            results = {}
            for _ in range(1 if quick or cond > 1 else 2):  # interleaved rounds, each case in a fresh process
                for key, label in cases.items():
                    r = _lsq_case(key, n, cond, tmp)
                    times[label].append(r["seconds"])
                    results[key] = r
            # well conditioned: compare with numpy's lstsq; ill-conditioned: with the exact (noise-free) answer
            ref = results["lstsq"]["coef"] if cond <= 1 else np.load(os.path.join(tmp, f"lstsq-{cond}-true.npy"))
            what = "lstsq" if cond <= 1 else "the exact w"
            errors = {}
            for key, label in cases.items():
                errors[key] = float(np.abs(results[key]["coef"] - ref).max() / np.abs(ref).max())
                peak = results[key]["peak_extra_mb"]
                notes[label] = f"max rel. coef error vs {what} {errors[key]:.1e}, extra peak RSS {peak:.0f} MB"
            title = (f"Least squares, n = {n:,}, d = 100, float64" +
                     (", condition number 1e10, noise-free targets" if cond > 1 else ""))
            rep.table(f"closed_form_cond{cond:g}", title, times, "sklearn LinearRegression", notes,
                      target=">= 2x faster than scikit-learn at equal accuracy" if cond == 1 else
                      "accurate where plain normal equations are not")
            out[f"cond{cond:g}"] = errors
    rep.data["closed_form_errors"] = out


# ----- 6. scaling -------------------------------------------------------------------------------------------
def bench_scaling(rep: Report, quick: bool) -> None:
    from matplotlib.figure import Figure

    from linearnet.data import fashion_mnist as fm
    from linearnet.evaluation.plots import save_figure
    from linearnet.models import build_learner, build_net, least_squares
    from linearnet.training import run_epoch

    ds = fm.load_fashion_mnist(progress=False)
    batch_sizes = [32, 256, 4096] if quick else [32, 64, 128, 256, 512, 1024, 2048, 4096]
    epoch_s = []
    for bs in batch_sizes:
        learner = build_learner(build_net("softmax", "concise", 784, 10), "softmax", "concise", 0.1)
        batches = fm.batches(ds, "train", bs)
        run_epoch(learner, batches, train=True, classify=True)  # warm-up
        best = float("inf")
        for _ in range(1 if quick else 3):  # best of three: one noisy epoch should not bend the curve
            t = time.perf_counter()
            run_epoch(learner, batches, train=True, classify=True)
            best = min(best, time.perf_counter() - t)
        epoch_s.append(best)
    ns = [10_000, 100_000] if quick else [10_000, 30_000, 100_000, 300_000, 1_000_000]
    lsq_s = []
    rng = np.random.default_rng(0)
    for n in ns:
        X = torch.from_numpy(rng.normal(size=(n, 100)))
        y = X @ torch.ones(100, dtype=torch.float64)
        least_squares(X, y)
        best = float("inf")
        for _ in range(1 if quick else 3):
            t = time.perf_counter()
            least_squares(X, y)
            best = min(best, time.perf_counter() - t)
        lsq_s.append(best)
    fig = Figure(figsize=(9, 3.5))
    a, b = fig.subplots(1, 2)
    a.loglog(batch_sizes, epoch_s, "o-")
    a.set_xlabel("batch size")
    a.set_ylabel("seconds per epoch (60k images)")
    a.set_title("softmax SGD epoch")
    a.grid(True, which="both")
    b.loglog(ns, lsq_s, "o-")
    b.set_xlabel("rows n (d = 100)")
    b.set_ylabel("seconds")
    b.set_title("closed-form least squares")
    b.grid(True, which="both")
    path = save_figure(fig, rep.figure_dir / "scaling.png") if rep.figure_dir else "not written (--update-readme)"
    lines = ["**Scaling** (plot: `benchmarks/results/scaling.png`)", "",
             "| batch size | " + " | ".join(map(str, batch_sizes)) + " |", "|---" * (len(batch_sizes) + 1) + "|",
             "| s / epoch | " + " | ".join(f"{v:.3f}" for v in epoch_s) + " |", "",
             "| rows n | " + " | ".join(f"{n:,}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|",
             "| closed form s | " + " | ".join(f"{v:.3f}" for v in lsq_s) + " |"]
    text = "\n".join(lines) + "\n"
    print("\n" + text + f"plot: {path}")
    rep.markdown.append(text)
    rep.data["scaling"] = {"batch_sizes": batch_sizes, "epoch_seconds": epoch_s, "rows": ns, "lsq_seconds": lsq_s}


# ----- out-of-core least squares: memory independent of rows ------------------------------------------
def _write_csv(path: Path, rows: int, d: int = 100) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    w = rng.normal(size=d)
    names = [f"x{i}" for i in range(d)] + ["y"]
    with pacsv.CSVWriter(str(path), pa.schema([(n, pa.float64()) for n in names])) as writer:
        for i in range(0, rows, 100_000):
            m = min(100_000, rows - i)
            X = rng.normal(size=(m, d)).round(6)
            y = X @ w + 3 + rng.normal(0, 0.1, m)
            writer.write_table(pa.table(dict(zip(names, [*X.T, y]))))


_HWM_WRAPPER = r"""
import atexit, runpy, sys
out = sys.argv[1]
def report():
    with open("/proc/self/status") as fh:
        hwm = next(line.split()[1] for line in fh if line.startswith("VmHWM"))
    with open(out, "w") as fh:
        fh.write(hwm)
atexit.register(report)
sys.argv = ["linearnet", *sys.argv[2:]]
runpy.run_module("linearnet", run_name="__main__")
"""


def _peak_rss_run(args: list[str], tmp: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``linearnet ARGS`` in a fresh process.

    The peak is the child's own VmHWM read at exit (getrusage of a forked child would count the
    parent's pages too).
    """
    hwm = os.path.join(tmp, "hwm.txt")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _HWM_WRAPPER, hwm, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    with open(hwm) as fh:
        return seconds, int(fh.read()) / 1024


def bench_streaming(rep: Report, quick: bool) -> None:
    sizes = [40_000, 200_000] if quick else [250_000, 2_500_000]
    lines = ["**Out-of-core closed form on generated CSV files** (d = 100 float64 features, `--chunk-rows 20000`;"
             " target: peak RSS < 500 MB and within 10% between the two sizes)", "",
             "| rows | file MB | wall s (incl. start-up) | MB/s | peak RSS MB |", "|---|---|---|---|---|"]
    out = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("LINEARNET_BENCH_TMP")) as tmp:
        for rows in sizes:
            path = Path(tmp) / f"{rows}.csv"
            _write_csv(path, rows)
            mb = path.stat().st_size / 2**20
            args = ["train", "linreg", "--impl", "closed-form", "--data", str(path), "--target", "y",
                    "--chunk-rows", "20000", "--no-progress", "--out", str(Path(tmp) / "run"), "--overwrite"]
            seconds, peak = _peak_rss_run(args, tmp)
            path.unlink()
            out.append({"rows": rows, "file_mb": mb, "seconds": seconds, "peak_rss_mb": peak})
            lines.append(f"| {rows:,} | {mb:.0f} | {seconds:.1f} | {mb / seconds:.0f} | {peak:.0f} |")
    ratio = out[1]["peak_rss_mb"] / out[0]["peak_rss_mb"]
    lines.append(f"\npeak RSS ratio, larger / smaller file: {ratio:.3f}")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    rep.markdown.append(text)
    rep.data["streaming"] = {"runs": out, "peak_ratio": ratio}


BENCHMARKS = {"read": bench_read, "softmax": bench_softmax, "accuracy": bench_accuracy, "sklearn": bench_sklearn,
              "closed_form": bench_closed_form, "streaming": bench_streaming, "scaling": bench_scaling}


def update_readme(facts: dict) -> None:
    """Rebuild README's benchmark block from the per-benchmark sections saved in benchmarks/results/."""
    start, end = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
    text = README.read_text()
    if start not in text or end not in text:
        raise SystemExit("README.md has no benchmark markers")
    sections = [(RESULTS / f"{name}.md").read_text() for name in BENCHMARKS if (RESULTS / f"{name}.md").exists()]
    header = ("Machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()) + ". Each section names the command "
              "and date that produced it.\n\n")
    block = f"{start}\n{header}" + "\n".join(sections) + end
    README.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _m: block, text, flags=re.S))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat (under 2 minutes)")
    p.add_argument("--json", help="write all results here")
    p.add_argument("--update-readme", action="store_true", help="write the tables into README.md")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    facts = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    rep = Report(RESULTS if args.update_readme else None)
    RESULTS.mkdir(exist_ok=True)
    for name in args.names or list(BENCHMARKS):
        first = len(rep.markdown)
        BENCHMARKS[name](rep, args.quick)
        if args.update_readme:
            cmd = f"python -m benchmarks {name}" + (" --quick" if args.quick else "")
            (RESULTS / f"{name}.md").write_text(f"`{cmd}` ({time.strftime('%Y-%m-%d')}):\n\n"
                                                + "\n".join(rep.markdown[first:]))
    if args.json:
        from linearnet.io import write_json

        write_json(args.json, {"machine": facts, "quick": args.quick, **rep.data})
    if args.update_readme:
        update_readme(facts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
