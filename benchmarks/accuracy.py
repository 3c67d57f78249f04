"""Test accuracy of the documented softmax configurations."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .harness import Report

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
