"""How an SGD epoch scales with the batch size and the closed form with the row count."""

from __future__ import annotations

import time

import numpy as np
import torch

from .harness import Report


def bench_scaling(rep: Report, quick: bool) -> None:
    from matplotlib.figure import Figure

    from linearnet.data import fashion_mnist as fm
    from linearnet.evaluation.plots import save_figure
    from linearnet.models import build_learner, build_net, least_squares
    from linearnet.training import run_epoch

    ds = fm.load_fashion_mnist(progress=False)
    batch_sizes = [256, 4096] if quick else [32, 64, 128, 256, 512, 1024, 2048, 4096]
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
    # The plot is written only with --update-readme, beside the table it belongs to; a quick run
    # (the test suite, `make bench`) leaves the tracked plot alone and says so.
    if rep.figure_dir:
        save_figure(fig, rep.figure_dir / "scaling.png")
        title = "**Scaling** (plot: `benchmarks/results/scaling.png`)"
    else:
        title = "**Scaling** (plot not written: it is written with --update-readme)"
    lines = [title, "",
             "| batch size | " + " | ".join(map(str, batch_sizes)) + " |", "|---" * (len(batch_sizes) + 1) + "|",
             "| s / epoch | " + " | ".join(f"{v:.3f}" for v in epoch_s) + " |", "",
             "| rows n | " + " | ".join(f"{n:,}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|",
             "| closed form s | " + " | ".join(f"{v:.3f}" for v in lsq_s) + " |"]
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    rep.markdown.append(text)
    rep.data["scaling"] = {"batch_sizes": batch_sizes, "epoch_seconds": epoch_s, "rows": ns, "lsq_seconds": lsq_s}
