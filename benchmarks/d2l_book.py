"""The English edition's softmax sections through ``from linearnet import d2l`` beside d2l 1.0.3's pipeline.

``d2l.Trainer(max_epochs=10).fit(model, d2l.FashionMNIST(batch_size=256))`` for the book's scratch and
concise models. The baseline reproduces what d2l 1.0.3's library does in the same run (the package itself
pins numpy 1.23 and cannot be installed beside ours): a per-sample PIL dataset read through a
``DataLoader`` with the book's 4 workers, and a board whose every draw plots every line again onto the
same axes. Same models, same Trainer; only the library parts differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

from .harness import Report


def _book_classes():
    from linearnet import d2l
    from linearnet.data.speed import chapter_loader

    class ReplottingBoard(d2l.ProgressBoard):
        """d2l 1.0.3's draw: average every_n points, then plot every line anew (headless, nothing shown)."""

        def draw(self, x, y, label, every_n=1):
            if not hasattr(self, "raw_points"):
                self.raw_points, self.data = {}, {}
            points = self.raw_points.setdefault(label, [])
            line = self.data.setdefault(label, [])
            points.append((x, float(y)))
            if len(points) != every_n:
                return
            line.append((sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)))
            points.clear()
            if self.fig is None:
                self.fig = d2l.plt.figure(figsize=self.figsize)
            axes = self.fig.gca()
            drawn, labels = [], []
            for (k, v), ls, color in zip(self.data.items(), self.ls, self.colors):
                drawn.append(axes.plot([p[0] for p in v], [p[1] for p in v], linestyle=ls, color=color)[0])
                labels.append(k)
            if self.xlim:
                axes.set_xlim(self.xlim)
            axes.set_xlabel(self.xlabel)
            axes.set_xscale(self.xscale)
            axes.set_yscale(self.yscale)
            axes.legend(drawn, labels)

    class PerSampleFashionMNIST(d2l.FashionMNIST):
        """The book's data module: every item decoded through PIL, batched by a 4-worker DataLoader."""

        def get_dataloader(self, train):
            from linearnet.d2l.common import fashion_mnist_data

            return chapter_loader(fashion_mnist_data(), "train" if train else "test", self.batch_size, workers=4,
                                  seed=int(torch.randint(0, 2**31, (1,))) if train else None)

    return ReplottingBoard, PerSampleFashionMNIST


def _scratch_model(d2l):
    """The book's softmax-from-scratch model, as its section writes it."""

    class SoftmaxRegressionScratch(d2l.Classifier):
        def __init__(self, num_inputs, num_outputs, lr, sigma=0.01):
            super().__init__()
            self.save_hyperparameters()
            self.W = torch.normal(0, sigma, size=(num_inputs, num_outputs), requires_grad=True)
            self.b = torch.zeros(num_outputs, requires_grad=True)

        def parameters(self):
            return [self.W, self.b]

        def forward(self, X):
            X_exp = torch.exp(torch.matmul(X.reshape((-1, self.W.shape[0])), self.W) + self.b)
            return X_exp / X_exp.sum(1, keepdims=True)

        def loss(self, y_hat, y):
            return -torch.log(y_hat[list(range(len(y_hat))), y]).mean()

    return SoftmaxRegressionScratch(num_inputs=784, num_outputs=10, lr=0.1)


def _child_case(kind: str, baseline: str, epochs: str, figure_dir: str) -> dict:
    """One timed case, run in a fresh process (see :func:`bench_d2l_book`): fit, then validation accuracy."""
    from linearnet import d2l
    from linearnet.d2l.common import fashion_mnist_data

    ReplottingBoard, PerSampleFashionMNIST = _book_classes()
    fashion_mnist_data()  # decoded once, before the clock starts
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # the first optimizer imports torch._dynamo
    d2l.figure_dir = figure_dir  # our boards' PNGs
    warnings.simplefilter("ignore", UserWarning)  # torch warns that 4 workers exceed 2 cores: the book asks for 4
    torch.manual_seed(0)
    start = time.perf_counter()
    data = (PerSampleFashionMNIST if baseline == "1" else d2l.FashionMNIST)(batch_size=256)
    model = _scratch_model(d2l) if kind == "scratch" else d2l.SoftmaxRegression(10, lr=0.1)
    if baseline == "1":
        model.board = ReplottingBoard()
    d2l.Trainer(max_epochs=int(epochs)).fit(model, data)
    with torch.no_grad():
        hits = torch.cat([model.accuracy(model(X), y, averaged=False)
                          for X, y in d2l.FashionMNIST.get_dataloader(data, False)])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "acc": float(hits.mean())}


_CHILD = ("import json, sys; from benchmarks.d2l_book import _child_case; "
          "print('RESULT', json.dumps(_child_case(*sys.argv[1:])))")


def bench_d2l_book(rep: Report, quick: bool) -> None:
    """Each case runs in a fresh process, timed inside it (fit + validation accuracy): a DataLoader's
    forked workers inherit whatever threads and locks earlier benchmarks left in this process, and were
    seen to stall for seconds at their exit, which would be charged to the wrong case."""
    epochs = 1 if quick else 10
    accs: dict[str, float] = {}
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="d2l-bench-") as tmp:
        for kind in ("scratch", "concise"):
            base, ours = f"d2l 1.0.3 pipeline, {kind}", f"linearnet d2l, {kind}"
            times: dict[str, list[float]] = {base: [], ours: []}
            for _ in range(1 if quick else 2):  # interleaved rounds
                for name, flag in ((base, "1"), (ours, "0")):
                    proc = subprocess.run([sys.executable, "-c", _CHILD, kind, flag, str(epochs), tmp], cwd=root,
                                          capture_output=True, text=True, check=True)
                    line = next(s for s in proc.stdout.splitlines() if s.startswith("RESULT "))
                    res = json.loads(line[len("RESULT "):])
                    times[name].append(res["seconds"])
                    accs[name] = res["acc"]
            rep.table(f"d2l_book_{kind}", f"English edition, softmax regression ({kind}): Trainer(max_epochs={epochs})."
                      "fit(model, FashionMNIST(batch_size=256))", times, base,
                      {k: f"val acc {v:.4f}" for k, v in accs.items() if k in times},
                      target="<= 1/10 of the baseline's time, same validation accuracy")
    rep.data["d2l_book"] = {"accuracy": accs}
