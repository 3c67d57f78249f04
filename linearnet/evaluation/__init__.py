"""Evaluation: metrics over batch sources, figures, and the live training view."""

from .metrics import (
    accuracy,
    accuracy_count,
    confusion_matrix,
    evaluate,
    per_class_accuracy,
    predict_labels,
    r2_score,
    rmse,
)

__all__ = ["accuracy", "accuracy_count", "confusion_matrix", "evaluate", "per_class_accuracy",
           "predict_labels", "r2_score", "rmse"]
