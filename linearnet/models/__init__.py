"""Models: from scratch, concise and analytic gradients (they mirror each other), the closed form, info theory."""

from __future__ import annotations

import functools

import torch
from torch import nn

from . import analytic, concise, scratch
from .analytic import AnalyticLearner, LinearRegressionAnalytic, SoftmaxRegressionAnalytic
from .closed_form import LeastSquaresSolution, Moments, least_squares
from .concise import ConciseLearner, LinearRegressionConcise, SoftmaxRegressionConcise
from .info import distribution_cross_entropy, entropy, surprisal
from .scratch import LinearRegressionScratch, ScratchLearner, SoftmaxRegressionScratch

__all__ = ["analytic", "concise", "scratch", "AnalyticLearner", "LinearRegressionAnalytic",
           "SoftmaxRegressionAnalytic", "LeastSquaresSolution", "Moments", "least_squares", "ConciseLearner",
           "LinearRegressionConcise", "SoftmaxRegressionConcise", "LinearRegressionScratch",
           "ScratchLearner", "SoftmaxRegressionScratch", "entropy", "surprisal",
           "distribution_cross_entropy", "build_net", "build_learner"]


_NETS = {("linreg", "scratch"): LinearRegressionScratch, ("linreg", "concise"): LinearRegressionConcise,
         ("linreg", "analytic"): LinearRegressionAnalytic, ("softmax", "scratch"): SoftmaxRegressionScratch,
         ("softmax", "concise"): SoftmaxRegressionConcise, ("softmax", "analytic"): SoftmaxRegressionAnalytic}


def build_net(model: str, impl: str, num_inputs: int, num_outputs: int = 1, seed: int = 0) -> nn.Module:
    """A freshly initialised network (weights ~ N(0, 0.01) from ``seed``, zero bias)."""
    g = torch.Generator().manual_seed(seed)
    cls = _NETS.get((model, impl), _NETS[(model, "concise")])
    if model == "linreg":
        return cls(num_inputs, generator=g)
    return cls(num_inputs, num_outputs, generator=g)


def build_learner(net: nn.Module, model: str, impl: str, lr: float, weight_decay: float = 0.0,
                  loss: str = "squared", huber_delta: float = 1.0):
    """Pair ``net`` with its implementation's loss and optimizer (scratch, concise or analytic)."""
    if impl in ("scratch", "analytic"):  # per-example losses of the same names (analytic's return dl/do too)
        side = scratch if impl == "scratch" else analytic
        if model == "softmax":
            loss_fn = side.cross_entropy
        elif loss == "huber":
            loss_fn = functools.partial(side.huber_loss, delta=huber_delta)
        else:
            loss_fn = side.squared_loss
    elif model == "softmax":
        loss_fn = concise.cross_entropy()
    else:
        loss_fn = concise.huber_loss(huber_delta) if loss == "huber" else concise.squared_loss()
    learner_cls = {"scratch": ScratchLearner, "analytic": AnalyticLearner}.get(impl, ConciseLearner)
    return learner_cls(net, loss_fn, lr, weight_decay)
