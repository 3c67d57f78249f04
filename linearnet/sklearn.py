"""scikit-learn estimators: thin adapters over linearnet's models, training loop and closed form.

``pip install linearnet[sklearn]``. For SGD the inputs are standardized internally (so it converges
whatever the units); ``coef_`` and ``intercept_`` are reported in the caller's units and
predictions are computed in float64 from them.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .data import Batches
from .data.tabular import column_stats
from .errors import DivergenceError
from .models import build_learner, build_net, least_squares
from .training import fit

__all__ = ["LinearRegression", "SoftmaxRegression", "expected_failed_checks"]

_DTYPES = [np.float64, np.float32]


class _SGDEstimator(BaseEstimator):
    """What both estimators share: parameter checks, standardization and one call of the shared loop."""

    def _check_sgd_params(self) -> None:
        for name in ("lr", "batch_size", "max_iter"):
            v = getattr(self, name)
            if not (np.isscalar(v) and np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if self.lr_schedule not in ("constant", "cosine", "step"):
            raise ValueError(f"lr_schedule must be 'constant', 'cosine' or 'step', got {self.lr_schedule!r}")

    @staticmethod
    def _standardize(X: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """float32 standardized copy of X (never modifies X) and the mean/std used, as float64.

        The statistics and the subtraction are float64 with the CLI's rule
        (:func:`~linearnet.data.tabular.column_stats`: constant only relative to the column's own
        magnitude), so a 1.7e12 offset or a std of 1e-7 survives; only the result is float32.
        """
        mean, std = column_stats(X)
        Z = torch.empty(X.shape, dtype=torch.float32)
        for i in range(0, len(X), 65536):  # float64 temporaries one block at a time
            Z[i:i + 65536] = ((torch.from_numpy(np.asarray(X[i:i + 65536], dtype=np.float64)) - mean) / std)
        return Z, mean.numpy(), std.numpy()

    @staticmethod
    def _weighted_rows(X: np.ndarray, y: np.ndarray, sample_weight, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """SGD with weights: a row of integer weight w counts as w copies of it (exactly what the weight
        means); fractional weights draw len(X) rows with probability proportional to the weight."""
        w = np.asarray(sample_weight, dtype=np.float64)
        if np.all(w == np.round(w)):
            counts = w.astype(np.int64)
        else:
            counts = np.random.default_rng(seed).multinomial(len(X), w / w.sum())
        return np.repeat(X, counts, axis=0), np.repeat(y, counts, axis=0)

    @staticmethod
    def _canonical_order(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows sorted by a fixed projection (before SGD's seeded shuffle), so a fit depends on the
        rows and not on their order: then a weight of 2 is exactly a repeated row, float32 rounding included."""
        key = np.asarray(X, dtype=np.float64) @ np.random.default_rng(0).normal(size=X.shape[1])
        order = np.argsort(key, kind="stable")
        return X[order], y[order]

    def _train(self, kind: str, Z: torch.Tensor, y: torch.Tensor, k: int, loss: str = "squared"
               ) -> tuple[np.ndarray, np.ndarray]:
        """Train on standardized inputs with the shared loop; returns weight (k, d) and bias (k,)."""
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        device = torch.device(self.device)
        # the chapter's derived gradients applied in place: no autograd needed, the fastest of the three
        net = build_net(kind, "analytic", Z.shape[1], k, seed=seed).to(device)
        learner = build_learner(net, kind, "analytic", self.lr, self.alpha, loss)
        batches = Batches(Z, y, min(int(self.batch_size), len(Z)), shuffle=True, seed=seed + 1, device=device)
        try:
            history = fit(learner, batches, int(self.max_iter), classify=kind == "softmax", base_lr=self.lr,
                          lr_schedule=self.lr_schedule)
        except DivergenceError as exc:  # the loop's advice names the CLI's --lr; the caller set lr
            raise DivergenceError(f"{str(exc).split(';')[0]}; try a smaller lr (for example lr={self.lr / 10:g})."
                                  ) from None
        self.n_iter_ = len(history)
        weight, bias = net.export()
        return weight.cpu().double().numpy(), bias.cpu().double().numpy()

    def _input(self, X) -> np.ndarray:
        check_is_fitted(self)
        return np.asarray(validate_data(self, X, reset=False, dtype=_DTYPES), dtype=np.float64)


class LinearRegression(RegressorMixin, _SGDEstimator):
    """Least-squares linear regression: exact (``solver='closed-form'``) or minibatch SGD.

    Parameters
    ----------
    solver : "closed-form" (default; Cholesky on the normal equations, QR when ill-conditioned) or "sgd".
    lr, batch_size, max_iter : SGD learning rate, minibatch size and epochs.
    lr_schedule : "constant", "cosine" or "step" (SGD).
    loss : "squared" or "huber" (SGD only).
    alpha : L2 penalty (weight decay) for SGD.
    random_state : seed for initialisation and shuffling.
    device : "cpu" or "cuda".
    """

    def __init__(self, solver="closed-form", lr=0.03, batch_size=32, max_iter=50, lr_schedule="constant",
                 loss="squared", alpha=0.0, random_state=None, device="cpu"):
        self.solver = solver
        self.lr = lr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.lr_schedule = lr_schedule
        self.loss = loss
        self.alpha = alpha
        self.random_state = random_state
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # a 2-D y fits one output per column, as scikit-learn's does
        return tags

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, y_numeric=True, dtype=_DTYPES, multi_output=True)
        if self.solver not in ("closed-form", "sgd"):
            raise ValueError(f"solver must be 'closed-form' or 'sgd', got {self.solver!r}")
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight must have a positive sum.")
        y64 = np.asarray(y, dtype=np.float64)
        Y = y64.reshape(len(y64), -1)
        if self.solver == "closed-form":
            # least_squares never writes to X: share its memory, copying only read-only or non-float64 input
            X64 = np.require(X, dtype=np.float64, requirements=["W"])
            sw = None if sample_weight is None else torch.from_numpy(sample_weight)
            sol = least_squares(torch.from_numpy(X64), torch.from_numpy(np.require(Y, requirements=["W"])),
                                sample_weight=sw)
            weight, bias = sol.weight.numpy(), sol.bias.numpy()
            self.n_iter_ = 1
        else:
            self._check_sgd_params()
            if self.loss not in ("squared", "huber"):
                raise ValueError(f"loss must be 'squared' or 'huber', got {self.loss!r}")
            if sample_weight is not None:
                X, Y = self._weighted_rows(X, Y, sample_weight, int(check_random_state(self.random_state)
                                                                    .randint(0, 2**31 - 1)))
            X, Y = self._canonical_order(X, Y)
            Z, mean, std = self._standardize(X)
            weight, bias = np.empty((Y.shape[1], X.shape[1])), np.empty(Y.shape[1])
            for j in range(Y.shape[1]):  # one SGD model per output column
                ym, ys = column_stats(Y[:, j:j + 1])
                ym, ys = float(ym[0]), float(ys[0])
                yt = torch.from_numpy(((Y[:, j] - ym) / ys).astype(np.float32)).reshape(-1, 1)
                w, b = self._train("linreg", Z, yt, 1, self.loss)
                w = w.reshape(-1) / std
                weight[j], bias[j] = ys * w, ys * (b[0] - w @ mean) + ym
        if y64.ndim == 1:
            self.coef_, self.intercept_ = weight.reshape(-1), float(bias[0])
        else:
            self.coef_, self.intercept_ = weight, bias
        return self

    def predict(self, X):
        return self._input(X) @ self.coef_.T + self.intercept_


class SoftmaxRegression(ClassifierMixin, _SGDEstimator):
    """Multinomial logistic (softmax) regression trained by minibatch SGD on the cross-entropy.

    Parameters
    ----------
    lr, batch_size, max_iter : SGD learning rate, minibatch size and epochs.
    lr_schedule : "constant", "cosine" (decay to 0 over max_iter) or "step".
    alpha : L2 penalty (weight decay) on the weights.
    random_state : seed for initialisation and shuffling.
    device : "cpu" or "cuda".
    """

    def __init__(self, lr=0.1, batch_size=64, max_iter=50, lr_schedule="constant", alpha=0.0, random_state=None,
                 device="cpu"):
        self.lr = lr
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.lr_schedule = lr_schedule
        self.alpha = alpha
        self.random_state = random_state
        self.device = device

    def fit(self, X, y, sample_weight=None):
        X, y = validate_data(self, X, y, dtype=_DTYPES)
        check_classification_targets(y)
        self._check_sgd_params()
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight must have a positive sum.")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("Classifier can't train when only one class is present.")
        if sample_weight is not None:
            X, encoded = self._weighted_rows(X, encoded, sample_weight,
                                             int(check_random_state(self.random_state).randint(0, 2**31 - 1)))
        X, encoded = self._canonical_order(X, encoded)
        Z, mean, std = self._standardize(X)
        w, b = self._train("softmax", Z, torch.from_numpy(encoded.astype(np.int64)), len(self.classes_))
        self.coef_ = w / std
        self.intercept_ = b - self.coef_ @ mean
        return self

    def _logits(self, X) -> np.ndarray:
        return self._input(X) @ self.coef_.T + self.intercept_

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
