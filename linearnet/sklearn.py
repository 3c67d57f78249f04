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
from sklearn.utils.validation import check_is_fitted, validate_data

from .data import Batches
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

        Not the CLI's :class:`~linearnet.data.Standardizer`: that one works in float64, which here
        would cost two float64 copies of X; in float32 a column whose std is below 1e-6 of its mean
        is left unscaled, since float32 cannot resolve it.
        """
        Z = torch.tensor(X, dtype=torch.float32)
        std, mean = torch.std_mean(Z, dim=0, correction=0)
        std = torch.where(std > 1e-6 * mean.abs().clamp_min(1.0), std, torch.ones_like(std))
        Z.sub_(mean).div_(std)
        return Z, mean.double().numpy(), std.double().numpy()

    def _train(self, kind: str, Z: torch.Tensor, y: torch.Tensor, k: int, loss: str = "squared"
               ) -> tuple[np.ndarray, np.ndarray]:
        """Train on standardized inputs with the shared loop; returns weight (k, d) and bias (k,)."""
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        device = torch.device(self.device)
        # the chapter's derived gradients applied in place: no autograd needed, the fastest of the three
        net = build_net(kind, "analytic", Z.shape[1], k, seed=seed).to(device)
        learner = build_learner(net, kind, "analytic", self.lr, self.alpha, loss)
        batches = Batches(Z, y, min(int(self.batch_size), len(Z)), shuffle=True, seed=seed + 1, device=device)
        history = fit(learner, batches, int(self.max_iter), classify=kind == "softmax", base_lr=self.lr,
                      lr_schedule=self.lr_schedule)
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

    def fit(self, X, y):
        X, y = validate_data(self, X, y, y_numeric=True, dtype=_DTYPES)
        if self.solver not in ("closed-form", "sgd"):
            raise ValueError(f"solver must be 'closed-form' or 'sgd', got {self.solver!r}")
        y64 = np.asarray(y, dtype=np.float64)
        if self.solver == "closed-form":
            # least_squares never writes to X: share its memory, copying only read-only or non-float64 input
            X64 = np.require(X, dtype=np.float64, requirements=["W"])
            sol = least_squares(torch.from_numpy(X64), torch.from_numpy(np.require(y64, requirements=["W"])))
            self.coef_ = sol.weight.numpy().reshape(-1)
            self.intercept_ = float(sol.bias.numpy()[0])
            self.n_iter_ = 1
            return self
        self._check_sgd_params()
        if self.loss not in ("squared", "huber"):
            raise ValueError(f"loss must be 'squared' or 'huber', got {self.loss!r}")
        Z, mean, std = self._standardize(X)
        ym, ys = y64.mean(), (y64.std() or 1.0)
        yt = torch.from_numpy(((y64 - ym) / ys).astype(np.float32)).reshape(-1, 1)
        w, b = self._train("linreg", Z, yt, 1, self.loss)
        w = w.reshape(-1) / std
        self.coef_ = ys * w
        self.intercept_ = float(ys * (b[0] - w @ mean) + ym)
        return self

    def predict(self, X):
        return self._input(X) @ self.coef_ + self.intercept_


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

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=_DTYPES)
        check_classification_targets(y)
        self._check_sgd_params()
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("Classifier can't train when only one class is present.")
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
