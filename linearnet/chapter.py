"""The main job: every experiment of the chapter, with its reported numbers beside ours."""

from __future__ import annotations

import math
import time
from pathlib import Path

from .config import TrainConfig
from .demos import vectorization_demo
from .evaluation import plots
from .training.run import train_run

# What the chapter reports (its printed outputs), for the comparison table.
CHAPTER_NUMBERS = {
    "linreg scratch": {"loss": 0.000049, "w_err": 0.0005, "b_err": 0.0001},
    "linreg concise": {"loss": None, "w_err": None, "b_err": None},
    "linreg analytic": {"loss": None, "w_err": None, "b_err": None},  # the chapter derives it, never runs it
    "linreg closed-form": {"loss": None, "w_err": None, "b_err": None},
    "softmax scratch": {"train_loss": 0.447, "train_acc": 0.848, "test_acc": 0.836},
    "softmax concise": {"train_loss": 0.448, "train_acc": 0.848, "test_acc": 0.828},
    "softmax analytic": {"train_loss": None, "train_acc": None, "test_acc": None},
}


def _fmt(v, spec: str = ".6f") -> str:
    return "-" if v is None else format(v, spec)


def run_chapter(out: Path, softmax: bool = True, data_dir: str | None = None, data_env: str | None = None,
                log=print) -> list[dict]:
    """Run the chapter's experiments into ``out`` and print the comparison table; return its rows.

    Also writes ``out/index.html``, one self-contained page with the table, every figure and the timings.
    """
    chapter_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    plots.save_figure(plots.normal_figure(), out / "normal.png")
    vec = vectorization_demo()
    log(f"vectorization: python loop {vec['loop_seconds'] * 1e3:.1f} ms vs vectorized "
        f"{vec['vectorized_seconds'] * 1e6:.1f} us ({vec['speedup']:.0f}x)")
    for impl in ("scratch", "concise", "analytic", "closed-form"):
        log(f"\n== linear regression, {impl} ==")
        cfg = TrainConfig.create("linreg", impl=impl, progress=False)
        start = time.perf_counter()
        r = train_run(cfg, out / f"linreg-{impl}", overwrite=True, log=log, live=False)
        m = r.metrics
        rows.append({"experiment": f"linreg {impl}", "ours_loss": m.get("train_eval_loss", m.get("train_loss")),
                     "ours_w_err": max(abs(v) for v in m["w_error"]), "ours_b_err": abs(m["b_error"]),
                     "seconds": time.perf_counter() - start, "allowed": _linreg_allowed(cfg)})
    if softmax:
        for impl in ("scratch", "concise", "analytic"):
            log(f"\n== softmax regression, {impl} (Fashion-MNIST) ==")
            cfg = TrainConfig.create("softmax", impl=impl, progress=False, data_dir=data_dir)
            start = time.perf_counter()
            r = train_run(cfg, out / f"softmax-{impl}", overwrite=True, log=log, data_env=data_env, live=False)
            m = r.metrics
            rows.append({"experiment": f"softmax {impl}", "ours_train_loss": m["train_loss"],
                         "ours_train_acc": m["train_acc"], "ours_test_acc": m["test_acc"],
                         "train_seconds": m["train_seconds"], "seconds": time.perf_counter() - start})
    table = format_table(rows)
    log("\n" + table)
    log(f"figures and runs: {out}")
    from .chapter_page import write_page

    command = f"linearnet chapter --out {out}" + ("" if softmax else " --skip-softmax") + \
        (f" --data-dir {data_dir}" if data_dir else "")
    timings = {"whole chapter": time.perf_counter() - chapter_start,
               "vectorization demo: python loop": vec["loop_seconds"],
               "vectorization demo: vectorized": vec["vectorized_seconds"]}
    log(f"page: {write_page(out, rows, CHAPTER_NUMBERS, table, timings, command)}")
    return rows


def _linreg_allowed(cfg: TrainConfig) -> dict[str, float]:
    """The statistical pass marks of one linreg run (see :func:`chapter_page.linreg_allowance`)."""
    from .chapter_page import linreg_allowance

    n = round(cfg.num_examples * (1 - cfg.resolved_val_fraction))
    if cfg.impl == "closed-form":
        return linreg_allowance(cfg.noise, n, len(cfg.true_w))
    # nn.MSELoss is twice the halved loss: its gradient, hence its SGD step, is twice as large
    lr = cfg.lr * (2 if cfg.impl == "concise" else 1)
    allowed = linreg_allowance(cfg.noise, n, len(cfg.true_w), lr, cfg.batch_size,
                               steps=cfg.epochs * math.ceil(n / cfg.batch_size),
                               start=max(abs(v) for v in (*cfg.true_w, cfg.true_b)))
    if cfg.impl == "concise":
        allowed["loss"] *= 2
    return allowed


def format_table(rows: list[dict]) -> str:
    """The chapter's numbers beside ours, one line per experiment."""
    lines = [f"{'experiment':<20} {'metric':<10} {'chapter':>9} {'ours':>9}   {'wall s':>7}"]
    for row in rows:
        ref = CHAPTER_NUMBERS[row["experiment"]]
        if row["experiment"].startswith("linreg"):
            metrics = [("loss", ref["loss"], row["ours_loss"]), ("|w err|", ref["w_err"], row["ours_w_err"]),
                       ("|b err|", ref["b_err"], row["ours_b_err"])]
            spec = ".6f"
        else:
            metrics = [("train loss", ref["train_loss"], row["ours_train_loss"]),
                       ("train acc", ref["train_acc"], row["ours_train_acc"]),
                       ("test acc", ref["test_acc"], row["ours_test_acc"])]
            spec = ".3f"
        for i, (name, theirs, ours) in enumerate(metrics):
            wall = f"{row['seconds']:7.2f}" if i == 0 else ""
            label = row["experiment"] if i == 0 else ""
            lines.append(f"{label:<20} {name:<10} {_fmt(theirs, spec):>9} {_fmt(ours, spec):>9}   {wall:>7}")
    if any(row["experiment"].startswith("linreg") for row in rows):
        lines += FOOTNOTE
    return "\n".join(lines)


# Why two numbers differ from the chapter's although nothing is wrong.
FOOTNOTE = ["note: the concise loss is nn.MSELoss, twice the chapter's squared loss (which halves it), hence "
            "twice the others' for the same fit;",
            "      w and b errors of a few 1e-4 are the noise in 1000 examples (the exact closed form is off as "
            "much): |b err| depends on the seed."]
