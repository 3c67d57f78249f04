"""Accuracy and fit time on Fashion-MNIST against scikit-learn's classifiers."""

from __future__ import annotations

import warnings

from .harness import Report, measure, quiet

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
              # the SGD solver trains with the analytic gradients by default (no autograd, no torch.optim)
              "linearnet SoftmaxRegression (best documented)": lambda: SoftmaxRegression(**BEST_ESTIMATOR)}
    accs: dict[str, float] = {}

    def case(name, make):
        def run():
            est = make().fit(X, y)
            accs[name] = float((est.predict(Xt) == yt).mean())
        return run

    SoftmaxRegression(max_iter=1).fit(X[:512], y[:512])  # warm torch up once; scikit-learn needs none
    with warnings.catch_warnings():
        quiet()
        times = measure({k: case(k, v) for k, v in models.items()}, 1, warmup=False)
    rows = rep.table("sklearn", f"Fashion-MNIST accuracy and fit time, {n} training images scaled to [0, 1]", times,
                     "sklearn LogisticRegression()", {k: f"test acc {v:.4f}" for k, v in accs.items()},
                     target="accuracy >= LogisticRegression's at <= 1/10 of its time")
    rep.data["sklearn"]["accuracy"] = accs
    ours, base = "linearnet SoftmaxRegression (best documented)", "sklearn LogisticRegression()"
    line = (f"SoftmaxRegression: {rows[ours]['median'] / rows[base]['median']:.3f} of LogisticRegression's fit time, "
            f"test acc {accs[ours]:.4f} vs {accs[base]:.4f}")
    print(line)
    rep.markdown[-1] += f"\n{line}\n"
