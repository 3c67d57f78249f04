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
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .data import Batches
from .data.moments import ColumnMoments
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
        """float32 standardized copy of X (never modifies X), and the mean/std used.

        The statistics and the subtraction are float64 with the CLI's rule
        (:func:`~linearnet.data.tabular.column_stats`: constant only relative to the column's own
        magnitude), so a 1.7e12 offset or a std of 1e-7 survives; only the result is float32. Rows
        stay in X's order and pass through one small float64 buffer: a reordered or float64 copy of
        the whole table would be a fresh large allocation, whose page faults cost more than the
        arithmetic (the canonical order is applied by the batches instead).
        """
        mean, std = column_stats(X)
        n, d = X.shape
        Z = torch.empty((n, d), dtype=torch.float32)
        step = max(1, (1 << 20) // max(d, 1))  # rows per block: an 8 MB float64 buffer
        buf = torch.empty((min(step, n), d), dtype=torch.float64)
        for i in range(0, n, step):
            block = buf[:min(step, n - i)]
            np.copyto(block.numpy(), X[i:i + step])  # float64, whatever X's dtype, layout or write flag
            Z[i:i + step] = block.sub_(mean).div_(std)
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
    def _canonical_index(X: np.ndarray) -> np.ndarray:
        """The rows' order by a fixed projection (before SGD's seeded shuffle), so a fit depends on the
        rows and not on their order: then a weight of 2 is exactly a repeated row, float32 rounding included."""
        key = np.asarray(X, dtype=np.float64) @ np.random.default_rng(0).normal(size=X.shape[1])
        return np.argsort(key, kind="stable")

    @classmethod
    def _canonical_order(cls, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """X and y with their rows in the canonical order (see :meth:`_canonical_index`)."""
        order = cls._canonical_index(X)
        return X[order], y[order]

    def _train(self, kind: str, Z: torch.Tensor, y: torch.Tensor, k: int, loss: str = "squared",
               init: tuple[np.ndarray, np.ndarray] | None = None, step: int = 0,
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Train on standardized inputs with the shared loop; returns weight (k, d) and bias (k,).

        ``rows`` is the order the rows count in (the canonical order), applied by the batches.

        ``init`` (weight, bias) continues from those parameters for one epoch (``partial_fit``'s pass
        over its batch, the ``step``-th call shuffling with its own seed) instead of ``max_iter`` epochs.
        """
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1)) + step
        device = torch.device(self.device)
        # the chapter's derived gradients applied in place: no autograd needed, the fastest of the three
        net = build_net(kind, "analytic", Z.shape[1], k, seed=seed)
        if init is not None:  # partial_fit: continue from the current coefficients
            net.load(torch.from_numpy(init[0]).float(), torch.from_numpy(init[1]).float())
        net = net.to(device)
        learner = build_learner(net, kind, "analytic", self.lr, self.alpha, loss)
        batches = Batches(Z, y, min(int(self.batch_size), len(Z)), shuffle=True, seed=seed + 1, device=device,
                          rows=None if rows is None else torch.from_numpy(rows))
        try:
            history = fit(learner, batches, 1 if init is not None else int(self.max_iter),
                          classify=kind == "softmax", base_lr=self.lr,
                          lr_schedule="constant" if init is not None else self.lr_schedule)
        except DivergenceError as exc:  # the loop's advice names the CLI's --lr; the caller set lr
            raise DivergenceError(f"{str(exc).split(';')[0]}; try a smaller lr (for example lr={self.lr / 10:g})."
                                  ) from None
        self.n_iter_ = len(history) if init is None else step + 1
        weight, bias = net.export()
        return weight.cpu().double().numpy(), bias.cpu().double().numpy()

    def _partial_pass(self, kind: str, X: np.ndarray, Y: np.ndarray, k: int, coef: np.ndarray | None,
                      intercept: np.ndarray | None, loss: str = "squared") -> tuple[np.ndarray, np.ndarray]:
        """``partial_fit``: one SGD pass over this batch, continuing from ``coef``/``intercept`` (caller units).

        The standardization statistics run over every batch seen so far (:class:`ColumnMoments`); the
        parameters are carried across calls in the caller's units and mapped into the current
        standardized units before each pass, so a statistic that moves never misplaces the model.
        ``Y`` is (n, outputs) float targets (regression, one model per column) or (n,) class indices.
        """
        state = getattr(self, "_partial_state", None)
        if state is None or coef is None:
            outputs = 1 if kind == "softmax" else Y.shape[1]
            state = self._partial_state = {"x": ColumnMoments(X.shape[1]), "y": ColumnMoments(outputs), "calls": 0}
        state["x"].add(X)
        xs = state["x"].standardizer()
        mean, std = xs.mean.numpy(), xs.std.numpy()
        Z = torch.from_numpy(((X - mean) / std).astype(np.float32))
        if kind == "softmax":
            init = self._initial(kind, X.shape[1], k) if coef is None else (coef * std, intercept + coef @ mean)
            W, b = self._train(kind, Z, torch.from_numpy(Y.astype(np.int64)), k, init=init, step=state["calls"])
            state["calls"] += 1
            coef = W / std
            return coef, b - coef @ mean
        state["y"].add(Y)
        ys = state["y"].standardizer()
        ym, ysd = ys.mean.numpy(), ys.std.numpy()
        out_w, out_b = np.empty((Y.shape[1], X.shape[1])), np.empty(Y.shape[1])
        for j in range(Y.shape[1]):
            init = self._initial(kind, X.shape[1], 1) if coef is None else \
                (coef[j:j + 1] * std / ysd[j], np.array([(intercept[j] - ym[j] + coef[j] @ mean) / ysd[j]]))
            yt = torch.from_numpy(((Y[:, j] - ym[j]) / ysd[j]).astype(np.float32)).reshape(-1, 1)
            w, bb = self._train(kind, Z, yt, 1, loss, init=init, step=state["calls"])
            w = w.reshape(-1) / std
            out_w[j], out_b[j] = ysd[j] * w, ysd[j] * (bb[0] - w @ mean) + ym[j]
        state["calls"] += 1
        return out_w, out_b

    def _partial_rows(self, X: np.ndarray, Y: np.ndarray, sample_weight) -> tuple[np.ndarray, np.ndarray]:
        """A batch as float64 rows, weights applied as in ``fit`` (integer weights repeat rows)."""
        X = np.asarray(X, dtype=np.float64)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            if not sample_weight.sum() > 0:
                raise ValueError("sample_weight must have a positive sum.")
            X, Y = self._weighted_rows(X, Y, sample_weight, int(check_random_state(self.random_state)
                                                               .randint(0, 2**31 - 1)))
        return self._canonical_order(X, Y)

    def _initial(self, kind: str, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The seeded initialisation that ``fit`` starts from (weights ~ N(0, 0.01), zero bias)."""
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        w, b = build_net(kind, "concise", d, k, seed=seed).export()
        return w.double().numpy(), b.double().numpy()

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
        self._partial_state = None  # a later partial_fit continues from this fit with fresh statistics
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
            order = self._canonical_index(X)
            Z, mean, std = self._standardize(X)
            weight, bias = np.empty((Y.shape[1], X.shape[1])), np.empty(Y.shape[1])
            for j in range(Y.shape[1]):  # one SGD model per output column
                ym, ys = column_stats(Y[:, j:j + 1])
                ym, ys = float(ym[0]), float(ys[0])
                yt = torch.from_numpy(((Y[:, j] - ym) / ys).astype(np.float32)).reshape(-1, 1)
                w, b = self._train("linreg", Z, yt, 1, self.loss, rows=order)
                w = w.reshape(-1) / std
                weight[j], bias[j] = ys * w, ys * (b[0] - w @ mean) + ym
        if y64.ndim == 1:
            self.coef_, self.intercept_ = weight.reshape(-1), float(bias[0])
        else:
            self.coef_, self.intercept_ = weight, bias
        return self

    def predict(self, X):
        return self._input(X) @ self.coef_.T + self.intercept_

    @available_if(lambda self: self.solver == "sgd")
    def partial_fit(self, X, y, sample_weight=None):
        """One SGD pass over this batch (``solver='sgd'`` only), continuing from the previous calls.

        Standardization statistics run over every batch seen so far; ``fit`` starts afresh.
        """
        first = not hasattr(self, "coef_")
        X, y = validate_data(self, X, y, y_numeric=True, dtype=_DTYPES, multi_output=True, reset=first)
        self._check_sgd_params()
        if self.loss not in ("squared", "huber"):
            raise ValueError(f"loss must be 'squared' or 'huber', got {self.loss!r}")
        y64 = np.asarray(y, dtype=np.float64)
        if not first and y64.ndim != np.ndim(self.coef_):
            raise ValueError("y must have the same number of outputs on every call of partial_fit.")
        X, Y = self._partial_rows(X, y64.reshape(len(y64), -1), sample_weight)
        coef, intercept = (None, None) if first else (np.atleast_2d(self.coef_), np.atleast_1d(self.intercept_))
        if coef is not None and coef.shape[0] != Y.shape[1]:
            raise ValueError("y must have the same number of outputs on every call of partial_fit.")
        weight, bias = self._partial_pass("linreg", X, Y, 1, coef, intercept, self.loss)
        if y64.ndim == 1:
            self.coef_, self.intercept_ = weight.reshape(-1), float(bias[0])
        else:
            self.coef_, self.intercept_ = weight, bias
        return self


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
        self._partial_state = None  # a later partial_fit continues from this fit with fresh statistics
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
        order = self._canonical_index(X)
        Z, mean, std = self._standardize(X)
        w, b = self._train("softmax", Z, torch.from_numpy(encoded.astype(np.int64)), len(self.classes_), rows=order)
        self.coef_ = w / std
        self.intercept_ = b - self.coef_ @ mean
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One SGD pass over this batch, continuing from the previous calls.

        ``classes`` (every label the stream can hold) is required on the first call, as in
        scikit-learn; standardization statistics run over every batch seen so far.
        """
        first = not hasattr(self, "coef_")
        X, y = validate_data(self, X, y, dtype=_DTYPES, reset=first)
        check_classification_targets(y)
        self._check_sgd_params()
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            self.classes_ = np.unique(classes)
            if len(self.classes_) < 2:
                raise ValueError("Classifier can't train when only one class is present.")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={np.unique(classes)} differs from the first call's {self.classes_}.")
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(f"y holds labels {unknown[:5]} that are not in classes {self.classes_}.")
        X, encoded = self._partial_rows(X, np.searchsorted(self.classes_, y), sample_weight)
        self.coef_, self.intercept_ = self._partial_pass("softmax", X, encoded, len(self.classes_),
                                                         None if first else self.coef_,
                                                         None if first else self.intercept_)
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
