"""Metrics: accuracy (ratio and the chapter's count), evaluation of any model, confusion matrices."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def accuracy_count(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Number of correct predictions (the chapter's ``accuracy``); ``y_hat`` is scores or labels."""
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    return float((y_hat.to(y.dtype) == y).sum())


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct predictions, in [0, 1]."""
    return accuracy_count(y_hat, y) / max(len(y), 1)


def predict_labels(net: nn.Module, batches: Iterable) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted and true class indices over a batch source (eval mode, no grad), on the CPU."""
    was_training = net.training
    net.eval()
    preds, trues = [], []
    with torch.no_grad():
        for X, y in batches:
            preds.append(net(X).argmax(dim=1).cpu())
            trues.append(y.cpu())
    net.train(was_training)
    return torch.cat(preds), torch.cat(trues)


def evaluate(net: nn.Module, batches: Iterable) -> float:
    """Accuracy of ``net`` on every example of ``batches``."""
    preds, trues = predict_labels(net, batches)
    return float((preds == trues).double().mean())


def confusion_matrix(preds: torch.Tensor, trues: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(num_classes, num_classes) counts: row = true class, column = predicted class."""
    flat = trues.to(torch.int64) * num_classes + preds.to(torch.int64)
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def per_class_accuracy(cm: torch.Tensor) -> torch.Tensor:
    """Recall of each class from a confusion matrix (NaN for a class with no examples)."""
    totals = cm.sum(1).double()
    return cm.diagonal().double() / totals


def rmse(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Root mean squared error."""
    return float(((y_hat.double() - y.double().reshape(y_hat.shape)) ** 2).mean().sqrt())


def r2_score(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Coefficient of determination (1 is perfect, 0 is predicting the mean)."""
    y = y.double().reshape(y_hat.shape)
    ss_res = ((y - y_hat.double()) ** 2).sum()
    ss_tot = ((y - y.mean()) ** 2).sum()
    return float(1 - ss_res / ss_tot) if float(ss_tot) > 0 else float("nan")
