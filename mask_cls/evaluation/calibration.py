"""How far a model's confidence can be trusted: reliability by confidence bin, expected
calibration error, and the share of predictions right above a threshold.

Pseudo-labels keep the predictions whose top probability reaches a threshold; whether those
labels are right is a question of calibration. Measured on validation persons (labels the
model never trained on), it tells before a student trains how noisy its pseudo-labels will be.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def reliability(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Per equal-width bin of the top probability: images, mean confidence, accuracy.
    A calibrated model has accuracy == confidence in every bin."""
    y_true = np.asarray(y_true, dtype=int)
    conf, right = probs.max(1), probs.argmax(1) == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin b holds (edges[b], edges[b+1]]; a confidence of exactly 0 joins the first bin
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = which == b
        rows.append({"low": edges[b], "high": edges[b + 1], "images": int(m.sum()),
                     "confidence": float(conf[m].mean()) if m.any() else float("nan"),
                     "accuracy": float(right[m].mean()) if m.any() else float("nan")})
    return pd.DataFrame(rows)


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """Sum over bins of (share of images) x |accuracy - confidence|."""
    table = reliability(y_true, probs, n_bins)
    used = table[table.images > 0]
    return float((used.images * (used.accuracy - used.confidence).abs()).sum() / max(1, len(probs)))


def kept_summary(y_true: np.ndarray, probs: np.ndarray, keep: np.ndarray) -> dict:
    """Of the kept predictions (e.g. top probability above a threshold): how many, their share
    of all, their mean confidence and the share of them that are right (a pseudo-label
    selection's precision); None where nothing is kept."""
    y_true = np.asarray(y_true, dtype=int)
    n = int(keep.sum())
    return {"images": len(probs), "kept": n, "kept_share": n / max(1, len(probs)),
            "confidence": float(probs[keep].max(1).mean()) if n else None,
            "right": float((probs[keep].argmax(1) == y_true[keep]).mean()) if n else None}
