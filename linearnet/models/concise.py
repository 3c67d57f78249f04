"""Concise models: ``nn.Linear``, framework losses and ``torch.optim.SGD``.

Mirrors :mod:`linearnet.models.scratch` piece for piece. Note the one deliberate difference the
chapter has too: ``nn.MSELoss`` is ``(y_hat - y)^2`` while the scratch ``squared_loss`` halves it,
so the concise gradients are twice as large; ``lr_concise = lr_scratch / 2`` gives identical
trajectories (``nn.HuberLoss`` and ``nn.CrossEntropyLoss`` equal their scratch twins exactly).
"""

from __future__ import annotations

import torch
from torch import nn


# ----- models -------------------------------------------------------------------------------------
class LinearRegressionConcise(nn.Sequential):
    """``nn.Sequential(nn.Linear(d, 1))`` with weights ~ N(0, 0.01) and zero bias, as the chapter builds it."""

    def __init__(self, num_inputs: int, generator: torch.Generator | None = None) -> None:
        super().__init__(nn.Linear(num_inputs, 1))
        with torch.no_grad():
            self[0].weight.copy_(torch.normal(0.0, 0.01, (1, num_inputs), generator=generator))
            self[0].bias.zero_()

    def export(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self[0].weight.detach().clone(), self[0].bias.detach().clone()

    def load(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        with torch.no_grad():
            self[0].weight.copy_(weight)
            self[0].bias.copy_(bias)


class SoftmaxRegressionConcise(nn.Sequential):
    """``nn.Sequential(nn.Flatten(), nn.Linear(784, 10))`` returning logits, weights ~ N(0, 0.01)."""

    def __init__(self, num_inputs: int = 784, num_outputs: int = 10,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(nn.Flatten(), nn.Linear(num_inputs, num_outputs))
        with torch.no_grad():
            self[1].weight.copy_(torch.normal(0.0, 0.01, (num_outputs, num_inputs), generator=generator))
            self[1].bias.zero_()

    def export(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self[1].weight.detach().clone(), self[1].bias.detach().clone()

    def load(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        with torch.no_grad():
            self[1].weight.copy_(weight)
            self[1].bias.copy_(bias)


# ----- losses (the framework's default: mean over the batch) -------------------------------------
def squared_loss() -> nn.Module:
    """``nn.MSELoss``: mean of ``(y_hat - y)^2``, twice the scratch squared loss."""
    return nn.MSELoss()


def huber_loss(delta: float = 1.0) -> nn.Module:
    """``nn.HuberLoss``: batch mean."""
    return nn.HuberLoss(delta=delta)


def cross_entropy() -> nn.Module:
    """``nn.CrossEntropyLoss``: batch mean (takes logits; class indices or soft labels)."""
    return nn.CrossEntropyLoss()


# ----- optimizer -----------------------------------------------------------------------------------
def sgd(net: nn.Module, lr: float, weight_decay: float = 0.0) -> torch.optim.SGD:
    """``torch.optim.SGD`` with L2 weight decay on weight matrices only, as the scratch ``sgd`` does."""
    if not weight_decay:  # one parameter group: each optimizer step loops over groups in Python
        return torch.optim.SGD(net.parameters(), lr=lr)
    decay = [p for p in net.parameters() if p.dim() >= 2]
    rest = [p for p in net.parameters() if p.dim() < 2]
    return torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                            {"params": rest, "weight_decay": 0.0}], lr=lr)


class ConciseLearner:
    """Model + framework loss + ``torch.optim.SGD``: one training step the framework way."""

    def __init__(self, net: nn.Module, loss, lr: float, weight_decay: float = 0.0) -> None:
        # ``module`` is the bare model even when ``net`` is wrapped by DistributedDataParallel
        self.net, self.module, self.loss = net, getattr(net, "module", net), loss
        self.lr, self.weight_decay = lr, weight_decay
        self.trainer = sgd(net, lr, weight_decay)

    def train_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step; returns the batch's summed loss and the outputs (both detached)."""
        out = self.net(X)
        l = self.loss(out, y)
        self.trainer.zero_grad()
        l.backward()
        self.trainer.step()
        return l.detach() * len(y), out.detach()

    def eval_step(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed loss and outputs without touching the parameters (call under no_grad)."""
        out = self.net(X)
        return self.loss(out, y) * len(y), out

    def set_lr(self, lr: float) -> None:
        self.lr = lr
        for group in self.trainer.param_groups:
            group["lr"] = lr

    def optimizer_state(self) -> dict[str, torch.Tensor]:
        """SGD without momentum keeps no tensors; its hyperparameters live in the config."""
        return {}

    def load_optimizer_state(self, state: dict[str, torch.Tensor]) -> None:
        return None
