"""Analytic models: the gradients the chapter derives by hand, applied in place; no autograd, no torch.optim.

Mirrors :mod:`linearnet.models.scratch` and :mod:`linearnet.models.concise` piece for piece: the same
models (same initialisation, same canonical ``export``), the same losses, the same SGD, but each loss
also returns its derivative with respect to the model's output, and the chain rule through the
linear layer ``o = X W^T + b`` is written out (``dL/dW = G^T X``, ``dL/db = sum of G's rows``).
Nothing records a graph, so a step costs the bare arithmetic: the right tool for speed, not for
learning autograd (scratch) or the framework (concise).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from .scratch import SoftmaxRegressionScratch


# ----- models -------------------------------------------------------------------------------------
# Both models compute their outputs transposed, ``O^T = W X^T + b`` (q, n), one column per example:
# MKL forms this product ~3x faster than the (n, q) one, the loss's reductions over the q outputs of
# each column then run ~10x faster than over rows of 10 (torch vectorises across the n columns), and
# the gradient ``G^T X`` lands in W's layout. ``forward`` returns the usual (n, q) for everyone else.
class LinearRegressionAnalytic(nn.Module):
    """Linear regression ``X w + b`` with ``w`` ~ N(0, 0.01), ``b = 0``, the same draws as scratch's.

    ``w`` is stored as a row (1, d), the layout of its gradient ``r^T X``: the update needs no transpose.
    """

    def __init__(self, num_inputs: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.normal(0.0, 0.01, (1, num_inputs), generator=generator))
        self.b = nn.Parameter(torch.zeros(1))
        self.requires_grad_(False)  # the analytic step writes w and b in place itself

    def outputs_t(self, X: torch.Tensor) -> torch.Tensor:
        """``y_hat^T = w X^T + b``, (1, n) (``b``, of shape (1,), broadcasts along the row)."""
        return torch.addmm(self.b, self.w, X.t())

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.outputs_t(X).t()  # (n, 1): the same memory as (1, n)

    def export(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters in the canonical layout shared by every implementation: weight (1, d), bias (1,)."""
        return self.w.detach().clone(), self.b.detach().clone()

    def load(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Set parameters from the canonical layout (inverse of :meth:`export`)."""
        with torch.no_grad():
            self.w.copy_(weight)
            self.b.copy_(bias)


class SoftmaxRegressionAnalytic(SoftmaxRegressionScratch):
    """Scratch's softmax regression (``W`` (num_outputs, num_inputs), the same draws, ``export``/``load``)
    with its parameters frozen and its logits also available transposed."""

    def __init__(self, num_inputs: int = 784, num_outputs: int = 10,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(num_inputs, num_outputs, generator)
        self.requires_grad_(False)  # the analytic step writes W and b in place itself

    def outputs_t(self, X: torch.Tensor) -> torch.Tensor:
        """Logits ``o^T = W X^T + b``, (q, n); ``forward`` gives the same (n, q), row-major."""
        return torch.addmm(self.b.unsqueeze(1), self.W, X.reshape(-1, self.W.shape[1]).t())


# ----- losses: the batch's summed loss and its derivative per example, on transposed outputs (q, n) ----
def squared_loss(y_hat_t: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``sum_i (y_hat_i - y_i)^2 / 2`` and ``dl/dy_hat = y_hat - y`` (the residual), (1, n)."""
    r = y_hat_t - y.reshape(y_hat_t.shape)
    # the sum of squares as one product r r^T / 2 (beta=0: addmm ignores its input slot, a view of r)
    return torch.addmm(r[:, :1], r, r.t(), beta=0, alpha=0.5).view(()), r


def huber_loss(y_hat_t: torch.Tensor, y: torch.Tensor, delta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed Huber loss and its derivative per example: ``dl/dy_hat = r`` for ``|r| <= delta``, else
    ``delta * sign(r)``, i.e. the residual clipped to ``[-delta, delta]``."""
    r = y_hat_t - y.reshape(y_hat_t.shape)
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).sum(), r.clamp(-delta, delta)


def cross_entropy(logits_t: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy from logits (q, n) and ``dl/do = softmax(o) - y`` (section 3.4), (q, n).

    ``y`` holds class indices (n,) or soft labels (n, q); for soft labels whose rows do not sum
    to 1 the exact derivative is ``softmax(o) * sum(y) - y``.
    """
    log_p = torch.log_softmax(logits_t, dim=0)  # log softmax via log-sum-exp, stable for any finite logits
    if y.dim() == 2 and y.is_floating_point():
        y_t = y.t()
        return -(y_t * log_p).sum(), log_p.exp() * y_t.sum(0, keepdim=True) - y_t
    cols = y.reshape(1, -1)
    loss = -log_p.gather(0, cols).sum()
    G = log_p.exp_()  # softmax(o), computed in place over log_p (no longer needed)
    G.scatter_add_(0, cols, torch.full(cols.shape, -1.0, dtype=G.dtype, device=G.device))  # minus one-hot y
    return loss, G


# ----- gradients and optimizer -----------------------------------------------------------------------
def linear_grads(X: torch.Tensor, G_t: torch.Tensor) -> list[torch.Tensor]:
    """Chain rule through ``o = X W^T + b`` for ``G = dL/do``, given as ``G^T`` (q, n): ``dL/dW = G^T X``
    (the chapter's ``X^T (Xw + b - y)`` for linear regression, in W's layout) and ``dL/db = sum_i G_i``."""
    return [torch.mm(G_t, X.flatten(1)), G_t.sum(1)]  # flatten, not reshape(n, -1): n may be 0 (a padded rank)


def sgd(params: list[torch.Tensor], grads: list[torch.Tensor], lr: float, batch_size: int,
        weight_decay: float = 0.0) -> None:
    """Minibatch SGD on a *summed* loss's gradients: ``p -= lr * (grad / batch_size + wd * p)``.

    Weight decay (L2, the gradient of ``wd / 2 * ||W||^2``) applies to weight matrices only, never
    to biases, as in the other two implementations.
    """
    for param, grad in zip(params, grads):
        if weight_decay and param.dim() >= 2:
            param.mul_(1 - lr * weight_decay)  # p - lr * wd * p
        param.add_(grad, alpha=-lr / batch_size)  # grads come in each parameter's own shape


class AnalyticLearner:
    """Model + loss with its derivative + in-place ``sgd``: one step with the chapter's gradients.

    Under ``torch.distributed`` wrap the model in :class:`DistributedAnalytic` (DDP needs autograd):
    each rank's summed gradients and batch size are then summed over ranks before the step, so
    ``world_size`` ranks taking ``batch[rank::world_size]`` step exactly as one process on the batch.
    """

    def __init__(self, net: nn.Module, loss, lr: float, weight_decay: float = 0.0) -> None:
        # ``module`` is the bare model even when ``net`` is wrapped by DistributedAnalytic
        self.net, self.module, self.loss = net, getattr(net, "module", net), loss
        self.lr, self.weight_decay = lr, weight_decay
        self.params = list(self.module.parameters())
        self.all_reduce = getattr(net, "all_reduce", None)

    # No ``torch.no_grad()`` below: the parameters are frozen and the data never requires grad, so no
    # graph is recorded in any grad mode, and a context per step would cost more than the bias update.
    def gradients(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """The batch's summed loss, the outputs, and the summed loss's gradient for each parameter."""
        out_t = self.module.outputs_t(X)
        l, G_t = self.loss(out_t, y)  # sum_i l_i, and G^T = (dl/do)^T with column i for example i
        return l, out_t.t().contiguous(), linear_grads(X, G_t)

    def train_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step; returns the batch's summed loss and the outputs (n, q)."""
        if self.all_reduce is not None:  # distributed: every rank's summed gradient first, then the step
            l, out, grads = self.gradients(X, y)
            grads, n = self.all_reduce(grads, X.shape[0])
            sgd(self.params, grads, self.lr, n, self.weight_decay)
            return l, out
        out_t = self.module.outputs_t(X)
        l, G_t = self.loss(out_t, y)
        weight, bias = self.params
        step = self.lr / X.shape[0]
        # sgd() on linear_grads(), fused: W <- (1 - lr wd) W - lr/n G^T X is one in-place product
        # (no gradient tensor is formed), and b <- b - lr/n sum_i G_i
        weight.addmm_(G_t, X if X.dim() == 2 else X.reshape(G_t.shape[1], -1),
                      beta=1 - self.lr * self.weight_decay, alpha=-step)
        bias.sub_(G_t.sum(1), alpha=step)
        return l, out_t.t().contiguous()  # row-major (n, q): argmax over rows of q is fast only so

    def eval_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed loss and outputs without touching the parameters."""
        out_t = self.module.outputs_t(X)
        return self.loss(out_t, y)[0], out_t.t().contiguous()

    def set_lr(self, lr: float) -> None:
        self.lr = lr

    def optimizer_state(self) -> dict[str, torch.Tensor]:
        """Plain SGD keeps no state between steps."""
        return {}

    def load_optimizer_state(self, state: dict[str, torch.Tensor]) -> None:
        return None


class DistributedAnalytic(nn.Module):
    """What ``DistributedDataParallel`` does for autograd, for the analytic step: rank 0's parameters
    are broadcast on construction, and :meth:`all_reduce` sums the gradients (and batch sizes)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        with torch.no_grad():
            for p in module.parameters():
                dist.broadcast(p, src=0)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.module(X)

    def all_reduce(self, grads: list[torch.Tensor], n: int) -> tuple[list[torch.Tensor], int]:
        """Sum of every rank's summed gradients and batch size, in one collective."""
        flat = torch.cat([g.reshape(-1) for g in grads] + [grads[0].new_tensor([float(n)])])
        dist.all_reduce(flat)
        out, start = [], 0
        for g in grads:
            out.append(flat[start:start + g.numel()].reshape(g.shape))
            start += g.numel()
        return out, int(flat[-1].item())
