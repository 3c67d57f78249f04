"""scikit-learn estimators: thin adapters over linearnet's models, training loop and closed form.

``pip install linearnet[sklearn]``. Inputs are standardized internally (so SGD converges whatever
the units); ``coef_`` and ``intercept_`` are reported in the caller's units and predictions are
computed in float64 from them.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .data import Batches
from .models import build_learner, build_net, least_squares
from .training import fit

__all__ = ["LinearRegression", "SoftmaxRegression", "expected_failed_checks"]


def _seed(random_state) -> int:
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(0)
    std = X.std(0)
    std = np.where(std > 1e-12 * np.maximum(np.abs(mean), 1.0), std, 1.0)
    return mean, std


def _check_positive(**values) -> None:
    for name, v in values.items():
        if not (np.isscalar(v) and np.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be > 0, got {v!r}")


def _sgd(kind: str, Z: np.ndarray, y: torch.Tensor, k: int, est) -> tuple[np.ndarray, np.ndarray, int]:
    """Train on standardized inputs with the shared loop; returns (weight (k, d), bias (k,), epochs)."""
    seed = _seed(est.random_state)
    device = torch.device(est.device)
    net = build_net(kind, "concise", Z.shape[1], k, seed=seed).to(device)
    loss = getattr(est, "loss", "squared")
    learner = build_learner(net, kind, "concise", est.lr, est.alpha, loss)
    batches = Batches(torch.from_numpy(Z.astype(np.float32)), y, min(est.batch_size, len(Z)), shuffle=True,
                      seed=seed + 1, device=device)
    history = fit(learner, batches, est.max_iter, classify=kind == "softmax")
    weight, bias = net.export()
    return weight.cpu().double().numpy(), bias.cpu().double().numpy(), len(history)


class LinearRegression(RegressorMixin, BaseEstimator):
    """Least-squares linear regression: exact (``solver='closed-form'``) or minibatch SGD.

    Parameters
    ----------
    solver : "closed-form" (default; Cholesky on the normal equations, QR when ill-conditioned) or "sgd".
    lr, batch_size, max_iter : SGD learning rate, minibatch size and epochs.
    loss : "squared" or "huber" (SGD only).
    alpha : L2 penalty (weight decay) for SGD.
    random_state : seed for initialisation and shuffling.
    device : "cpu" or "cuda".
    """

    def __init__(self, solver="closed-form", lr=0.03, batch_size=32, max_iter=50, loss="squared", alpha=0.0,
                 random_state=None, device="cpu"):
        self.solver = solver
        self.lr = lr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.loss = loss
        self.alpha = alpha
        self.random_state = random_state
        self.device = device

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True, dtype=[np.float64, np.float32])
        if self.solver not in ("closed-form", "sgd"):
            raise ValueError(f"solver must be 'closed-form' or 'sgd', got {self.solver!r}")
        X64, y64 = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if self.solver == "closed-form":
            sol = least_squares(torch.tensor(X64), torch.tensor(y64))  # copies: inputs may be read-only
            self.coef_ = sol.weight.numpy().reshape(-1)
            self.intercept_ = float(sol.bias.numpy()[0])
            self.n_iter_ = 1
            return self
        _check_positive(lr=self.lr, batch_size=self.batch_size, max_iter=self.max_iter)
        if self.loss not in ("squared", "huber"):
            raise ValueError(f"loss must be 'squared' or 'huber', got {self.loss!r}")
        mean, std = _standardize(X64)
        ym, ys = y64.mean(), (y64.std() or 1.0)
        yt = torch.from_numpy(((y64 - ym) / ys).astype(np.float32)).reshape(-1, 1)
        w, b, self.n_iter_ = _sgd("linreg", (X64 - mean) / std, yt, 1, self)
        w = w.reshape(-1) / std
        self.coef_ = ys * w
        self.intercept_ = float(ys * (b[0] - w @ mean) + ym)
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_


class SoftmaxRegression(ClassifierMixin, BaseEstimator):
    """Multinomial logistic (softmax) regression trained by minibatch SGD on the cross-entropy.

    Parameters
    ----------
    lr, batch_size, max_iter : SGD learning rate, minibatch size and epochs.
    alpha : L2 penalty (weight decay) on the weights.
    random_state : seed for initialisation and shuffling.
    device : "cpu" or "cuda".
    """

    def __init__(self, lr=0.1, batch_size=64, max_iter=50, alpha=0.0, random_state=None, device="cpu"):
        self.lr = lr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.alpha = alpha
        self.random_state = random_state
        self.device = device

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        _check_positive(lr=self.lr, batch_size=self.batch_size, max_iter=self.max_iter)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("Classifier can't train when only one class is present.")
        X64 = np.asarray(X, dtype=np.float64)
        mean, std = _standardize(X64)
        yt = torch.from_numpy(encoded.astype(np.int64))
        w, b, self.n_iter_ = _sgd("softmax", (X64 - mean) / std, yt, len(self.classes_), self)
        w = w / std
        self.coef_ = w
        self.intercept_ = b - w @ mean
        return self

    def _logits(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_

    def decision_function(self, X):
        """Logits (n, k); for two classes the logit difference (n,), as scikit-learn expects."""
        o = self._logits(X)
        return o[:, 1] - o[:, 0] if o.shape[1] == 2 else o

    def predict_log_proba(self, X):
        o = self._logits(X)
        o = o - o.max(1, keepdims=True)
        return o - np.log(np.exp(o).sum(1, keepdims=True))

    def predict_proba(self, X):
        return np.exp(self.predict_log_proba(X))

    def predict(self, X):
        index = self._logits(X).argmax(1)
        return self.classes_[index]


def expected_failed_checks(estimator) -> dict[str, str]:
    """scikit-learn estimator checks that cannot pass by nature, with the reason (empty when none)."""
    return {}
