"""Benchmark harness: ``python -m benchmarks [NAME ...] [--quick] [--json OUT]``.

Each benchmark runs its cases interleaved (A B A B ...) after a warm-up, prints min/median/max
seconds and the median ratio to its baseline measured in the same run, and the machine facts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch


def machine() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "numpy": np.__version__,
            "threads": torch.get_num_threads(), "blas": torch.__config__.show().count("mkl") and "MKL" or "other"}


def measure(cases: dict, repeats: int) -> dict[str, list[float]]:
    """Interleaved timings: one warm-up each, then ``repeats`` rounds of every case in turn."""
    for fn in cases.values():
        fn()
    times = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def report(title: str, times: dict[str, list[float]], baseline: str, extra: dict | None = None) -> dict:
    base = statistics.median(times[baseline])
    print(f"\n## {title}")
    print(f"| case | min s | median s | max s | speed-up vs {baseline} |")
    print("|---|---|---|---|---|")
    rows = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rows[name] = {"min": min(ts), "median": med, "max": max(ts), "speedup": base / med}
        note = (extra or {}).get(name, "")
        print(f"| {name} | {min(ts):.4f} | {med:.4f} | {max(ts):.4f} | {base / med:.1f}x {note} |")
    return rows


def bench_read(quick: bool) -> dict:
    from torch.utils import data

    from linearnet.data import fashion_mnist as fm

    ds = fm.load_fashion_mnist(progress=False)
    ours = fm.batches(ds, "train", 256)

    def loader(workers):
        dl = data.DataLoader(fm.FashionMNISTDataset(ds, "train"), 256, shuffle=True, num_workers=workers,
                             persistent_workers=workers > 0)
        return lambda: [None for _ in dl]

    cases = {"Dataset+DataLoader 0 workers": loader(0), "linearnet Batches": lambda: [None for _ in ours]}
    if not quick:
        cases["Dataset+DataLoader 4 workers"] = loader(4)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        times = measure(cases, 1 if quick else 3)
    return report("Fashion-MNIST read pass, batch 256", times, "Dataset+DataLoader 0 workers")


def bench_softmax(quick: bool) -> dict:
    from torch.utils import data

    from linearnet.data import fashion_mnist as fm
    from linearnet.models import build_learner, build_net
    from linearnet.training import fit

    ds = fm.load_fashion_mnist(progress=False)
    epochs = 2 if quick else 10
    accs = {}

    def ours(impl):
        def run():
            net = build_net("softmax", impl, 784, 10)
            hist = fit(build_learner(net, "softmax", impl, 0.1), fm.batches(ds, "train", 256, seed=0), epochs,
                       eval_sets={"test": fm.batches(ds, "test", 4096)}, classify=True)
            accs[f"linearnet {impl}"] = hist[-1]["test_acc"]
        return run

    class SameOrder(data.Sampler):
        """The permutations ``Batches(seed=0)`` draws, so both pipelines see identical batches."""

        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __iter__(self):
            return iter(torch.randperm(self.n, generator=self.g).tolist())

        def reset(self):
            self.g = torch.Generator().manual_seed(0)

    def per_sample():
        sampler = SameOrder(len(ds.train_labels))
        sampler.reset()
        train = data.DataLoader(fm.FashionMNISTDataset(ds, "train"), 256, sampler=sampler)
        test = data.DataLoader(fm.FashionMNISTDataset(ds, "test"), 256)
        net = build_net("softmax", "concise", 784, 10)
        hist = fit(build_learner(net, "softmax", "concise", 0.1), train, epochs, eval_sets={"test": test},
                   classify=True)
        accs["per-sample pipeline"] = hist[-1]["test_acc"]

    W = torch.randn(10, 784)

    def floor():  # the bare work: gather + forward + backward products of every step
        Xf = ds.train_images.reshape(-1, 784)
        for _ in range(epochs):
            perm = torch.randperm(60000)
            for i in range(0, 60000, 256):
                X = Xf.index_select(0, perm[i:i + 256]).to(torch.float32).div_(255)
                G = torch.nn.functional.linear(X, W)
                G.t() @ X

    cases = {"per-sample pipeline": per_sample, "linearnet scratch": ours("scratch"),
             "linearnet concise": ours("concise"), "bare GEMM floor": floor}
    times = measure(cases, 1 if quick else 3)
    rows = report(f"Softmax regression, {epochs} epochs + per-epoch test evaluation", times, "per-sample pipeline",
                  {k: f"(test acc {v:.4f})" for k, v in accs.items()})
    rows["accuracy"] = accs
    return rows


def bench_sklearn(quick: bool) -> dict:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    from linearnet.data import fashion_mnist as fm
    from linearnet.sklearn import SoftmaxRegression

    ds = fm.load_fashion_mnist(progress=False)
    n = 10000 if quick else 60000
    X = ds.train_images[:n].reshape(n, -1).numpy() / 255.0
    y = ds.train_labels[:n].numpy()
    Xt, yt = ds.test_images.reshape(10000, -1).numpy() / 255.0, ds.test_labels.numpy()
    models = {"sklearn LogisticRegression()": LogisticRegression(),
              "sklearn SGDClassifier(log_loss)": SGDClassifier(loss="log_loss", random_state=0),
              "linearnet SoftmaxRegression": SoftmaxRegression(lr=0.05, batch_size=256, max_iter=10,
                                                               alpha=1e-4, random_state=0)}
    accs = {}
    cases = {}
    for name, est in models.items():
        def run(est=est, name=name):
            est.fit(X, y)
            accs[name] = float((est.predict(Xt) == yt).mean())
        cases[name] = run
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = {name: [] for name in cases}
        for name, fn in cases.items():  # one fit each: LogisticRegression alone takes tens of seconds
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    rows = report(f"Fashion-MNIST accuracy/time frontier ({n} training images)", times,
                  "sklearn LogisticRegression()", {k: f"(test acc {v:.4f})" for k, v in accs.items()})
    rows["accuracy"] = accs
    return rows


def bench_closed_form(quick: bool) -> dict:
    from sklearn.linear_model import LinearRegression as SkLR

    from linearnet.sklearn import LinearRegression

    n = 100_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 100))
    y = X @ rng.normal(size=100) + 3 + rng.normal(0, 0.1, n)
    coefs = {}

    def case(name, fn):
        def run():
            coefs[name] = fn()
        return run

    cases = {"sklearn LinearRegression": case("sk", lambda: SkLR().fit(X, y).coef_),
             "numpy lstsq": case("np", lambda: np.linalg.lstsq(np.hstack([X, np.ones((n, 1))]), y, rcond=None)[0][:-1]),
             "linearnet closed form": case("ours", lambda: LinearRegression().fit(X, y).coef_)}
    times = measure(cases, 1 if quick else 2)
    err = float(np.abs(coefs["ours"] - coefs["sk"]).max())
    rows = report(f"Least squares n={n}, d=100, float64 (max |coef - sklearn| = {err:.1e})", times,
                  "sklearn LinearRegression")
    rows["max_coef_error"] = err
    return rows


BENCHMARKS = {"read": bench_read, "softmax": bench_softmax, "sklearn": bench_sklearn, "closed_form": bench_closed_form}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(BENCHMARKS)}")
    p.add_argument("--quick", action="store_true", help="small sizes, one repeat (under 2 minutes)")
    p.add_argument("--json", help="write all results here")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    facts = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    results = {"machine": facts, "quick": args.quick}
    for name in args.names or list(BENCHMARKS):
        results[name] = BENCHMARKS[name](args.quick)
    if args.json:
        from linearnet.io import write_json

        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
