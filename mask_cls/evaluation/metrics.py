"""Scores of 18-class predictions: macro F1 (the competition metric), accuracy, sub-task F1.

Plain numpy from the confusion matrix, so the numbers can be checked against scikit-learn.
Macro F1 averages over the classes present in the truth or the predictions (as
``sklearn.metrics.f1_score(average="macro")`` does by default).
"""

from __future__ import annotations

import numpy as np

from mask_cls import labels as L


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """n x n counts, rows = truth, columns = prediction."""
    return np.bincount(np.asarray(y_true) * n + np.asarray(y_pred), minlength=n * n).reshape(n, n)


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(float)
    denom = cm.sum(0) + cm.sum(1)  # 2tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, 0.0)


def macro_f1(y_true, y_pred, n: int = L.NUM_CLASSES) -> float:
    cm = confusion(y_true, y_pred, n)
    present = (cm.sum(0) + cm.sum(1)) > 0
    return float(f1_per_class(cm)[present].mean()) if present.any() else 0.0


def score(y_true, y_pred) -> dict[str, float]:
    """f1 (macro, 18 classes), acc, and macro F1 of each sub-task (mask, gender, age)."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError("y_true and y_pred must be non-empty and of the same length")
    out = {"f1": macro_f1(y_true, y_pred), "acc": float((y_true == y_pred).mean()), "n": int(y_true.size)}
    parts_t, parts_p = L.decode(y_true), L.decode(y_pred)
    for (task, k), t, p in zip(L.SUBTASKS.items(), parts_t, parts_p):
        out[f"f1_{task}"] = macro_f1(t, p, k)
    return out
