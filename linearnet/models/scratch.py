"""From-scratch models: own parameters, own losses, hand-written minibatch SGD (autograd for gradients).

This module mirrors :mod:`linearnet.models.concise` piece for piece: each class or function here
has its framework counterpart there, so the two can be read side by side.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


# ----- models -------------------------------------------------------------------------------------
def linreg(X: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The linear regression model ``X w + b``: X (n, d), w (d, 1), b (1,) -> (n, 1)."""
    return torch.matmul(X, w) + b


class LinearRegressionScratch(nn.Module):
    """Linear regression with explicit ``w`` (d, 1) ~ N(0, 0.01) and ``b = 0``, as in the chapter."""

    def __init__(self, num_inputs: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.normal(0.0, 0.01, (num_inputs, 1), generator=generator))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return linreg(X, self.w, self.b)

    def export(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters in the canonical layout shared by every implementation: weight (1, d), bias (1,)."""
        return self.w.detach().t().contiguous(), self.b.detach().clone()

    def load(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Set parameters from the canonical layout (inverse of :meth:`export`)."""
        with torch.no_grad():
            self.w.copy_(weight.t())
            self.b.copy_(bias)


class SoftmaxRegressionScratch(nn.Module):
    """Softmax regression returning logits ``X.reshape(-1, d) @ W.T + b``.

    ``W`` is stored as (num_outputs, num_inputs), the transpose of the chapter's (784, 10), the layout
    every implementation exports. The product and the bias are one fused ``addmm``: one autograd node
    instead of a product, a transpose, a copy and an addition (on the 2-core AMD EPYC the (n, 10)
    product costs what the (10, n) one does, 47-51 us at n = 256, so the node count decides).
    The model returns logits rather than ``softmax(...)`` so that the loss can be computed in the
    log domain; :func:`softmax` of the output gives the chapter's probabilities.
    """

    def __init__(self, num_inputs: int = 784, num_outputs: int = 10,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.normal(0.0, 0.01, (num_outputs, num_inputs), generator=generator))
        self.b = nn.Parameter(torch.zeros(num_outputs))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.b, X.reshape(-1, self.W.shape[1]), self.W.t())  # X W^T + b, one fused product

    def export(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.W.detach().clone(), self.b.detach().clone()

    def load(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        with torch.no_grad():
            self.W.copy_(weight)
            self.b.copy_(bias)


# ----- losses (per example, unreduced) -----------------------------------------------------------
def squared_loss(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The chapter's squared loss ``(y_hat - y)^2 / 2`` per example (half of ``nn.MSELoss``)."""
    return (y_hat - y.reshape(y_hat.shape)) ** 2 / 2


def huber_loss(y_hat: torch.Tensor, y: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber loss per example: ``r^2 / 2`` for ``|r| <= delta``, else ``delta (|r| - delta / 2)``."""
    r = (y_hat - y.reshape(y_hat.shape)).abs()
    return torch.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta))


def _row_shift(X: torch.Tensor) -> torch.Tensor:
    """Each row's max, treated as a constant: softmax is shift-invariant, so the gradient through the
    shift is exactly zero and autograd need not compute it (saves ~30 us per training step)."""
    return X.detach().amax(dim=1, keepdim=True)


def softmax(X: torch.Tensor) -> torch.Tensor:
    """Row-wise softmax, stable for any finite logits: the row max is subtracted before ``exp``."""
    X_exp = torch.exp(X - _row_shift(X))
    return X_exp / X_exp.sum(1, keepdim=True)


def log_softmax(X: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log softmax = o - log sum exp(o)``, so no probability is ever rounded to 0 then logged.

    The row max is subtracted first (exact in float32), so even logits near 1000 keep full precision;
    ``torch.logsumexp`` is ``log(exp(.).sum())`` in one autograd node instead of three.
    """
    shifted = X - _row_shift(X)
    return shifted - torch.logsumexp(shifted, 1, keepdim=True)


def one_hot(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices (n,) -> float one-hot rows (n, num_classes)."""
    out = torch.zeros(len(y), num_classes, dtype=torch.float32, device=y.device)
    out[torch.arange(len(y), device=y.device), y] = 1.0
    return out


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per example from logits, in the log domain: ``l = log sum_k exp(o_k) - o_y``.

    ``y`` holds class indices (n,) or soft labels (n, q), one probability vector per example. For
    indices this is the chapter's form of the loss after substituting the softmax (section 3.4),
    on row-max-shifted logits; it never forms the (n, q) log-probabilities (fewer autograd nodes).
    """
    if y.dim() == logits.dim() and y.is_floating_point():
        return -(y * log_softmax(logits)).sum(1)
    shifted = logits - _row_shift(logits)
    return torch.logsumexp(shifted, 1) - shifted.gather(1, y.reshape(-1, 1)).reshape(-1)


# ----- optimizer -----------------------------------------------------------------------------------
def sgd(params: Iterable[torch.Tensor], lr: float, batch_size: int, weight_decay: float = 0.0) -> None:
    """Minibatch SGD on a *summed* loss: ``p -= lr * (p.grad / batch_size + wd * p)``; zeroes grads.

    ``batch_size`` must be the actual size of the batch (the last one may be shorter). Weight decay
    applies to weight matrices only (``p.dim() >= 2``), never to biases.
    """
    with torch.no_grad():
        for param in params:
            if weight_decay and param.dim() >= 2:
                param -= lr * (param.grad / batch_size + weight_decay * param)
            else:
                param.add_(param.grad, alpha=-lr / batch_size)  # one fused pass over the parameter
            param.grad.zero_()


class ScratchLearner:
    """Model + per-example loss + hand-written ``sgd``: one training step as the chapter writes it."""

    def __init__(self, net: nn.Module, loss, lr: float, weight_decay: float = 0.0) -> None:
        # ``module`` is the bare model even when ``net`` is wrapped by DistributedDataParallel
        self.net, self.module, self.loss = net, getattr(net, "module", net), loss
        self.lr, self.weight_decay = lr, weight_decay
        self.params = list(net.parameters())

    def train_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step; returns the batch's summed loss and the outputs (both detached)."""
        out = self.net(X)
        l = self.loss(out, y).sum()
        l.backward()
        sgd(self.params, self.lr, X.shape[0], self.weight_decay)
        return l.detach(), out.detach()

    def eval_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed loss and outputs without touching the parameters (call under no_grad)."""
        out = self.net(X)
        return self.loss(out, y).sum(), out

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    def optimizer_state(self) -> dict[str, torch.Tensor]:
        """Plain SGD keeps no state between steps."""
        return {}

    def load_optimizer_state(self, state: dict[str, torch.Tensor]) -> None:
        return None
