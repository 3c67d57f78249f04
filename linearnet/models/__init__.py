"""Models: from scratch beside concise (they mirror each other), the analytic solution, info theory."""

from __future__ import annotations

import torch
from torch import nn

from . import concise, scratch
from .closed_form import LeastSquaresSolution, Moments, least_squares
from .concise import ConciseLearner, LinearRegressionConcise, SoftmaxRegressionConcise
from .info import distribution_cross_entropy, entropy, surprisal
from .scratch import LinearRegressionScratch, ScratchLearner, SoftmaxRegressionScratch

__all__ = ["concise", "scratch", "LeastSquaresSolution", "Moments", "least_squares", "ConciseLearner",
           "LinearRegressionConcise", "SoftmaxRegressionConcise", "LinearRegressionScratch",
           "ScratchLearner", "SoftmaxRegressionScratch", "entropy", "surprisal",
           "distribution_cross_entropy", "build_net", "build_learner"]


def build_net(model: str, impl: str, num_inputs: int, num_outputs: int = 1, seed: int = 0) -> nn.Module:
    """A freshly initialised network (weights ~ N(0, 0.01) from ``seed``, zero bias)."""
    g = torch.Generator().manual_seed(seed)
    if model == "linreg":
        cls = LinearRegressionScratch if impl == "scratch" else LinearRegressionConcise
        return cls(num_inputs, generator=g)
    cls = SoftmaxRegressionScratch if impl == "scratch" else SoftmaxRegressionConcise
    return cls(num_inputs, num_outputs, generator=g)


def build_learner(net: nn.Module, model: str, impl: str, lr: float, weight_decay: float = 0.0,
                  loss: str = "squared", huber_delta: float = 1.0):
    """Pair ``net`` with its implementation's loss and optimizer (scratch or concise)."""
    side = scratch if impl == "scratch" else concise
    if model == "softmax":
        loss_fn = side.cross_entropy if impl == "scratch" else side.cross_entropy()
    elif loss == "huber":
        loss_fn = ((lambda y_hat, y: scratch.huber_loss(y_hat, y, huber_delta)) if impl == "scratch"
                   else concise.huber_loss(huber_delta))
    else:
        loss_fn = side.squared_loss if impl == "scratch" else side.squared_loss()
    learner_cls = ScratchLearner if impl == "scratch" else ConciseLearner
    return learner_cls(net, loss_fn, lr, weight_decay)
