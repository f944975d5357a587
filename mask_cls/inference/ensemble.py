"""Combining the probabilities of several models: a weighted mean that accumulates
(never overwrites), or hard voting."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def soft_vote(probs: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of (N, 18) probability arrays; weights are normalised to sum 1."""
    if not probs:
        raise ValueError("no model outputs to ensemble")
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(probs) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{len(w)} weights for {len(probs)} models; weights must be finite, >= 0 and not all 0")
    w = w / w.sum()
    acc = np.zeros_like(probs[0], dtype=np.float64)
    for wi, p in zip(w, probs):
        if p.shape != acc.shape:
            raise ValueError(f"model outputs differ in shape: {p.shape} vs {acc.shape}")
        acc += wi * p
    return acc


def hard_vote(probs: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted votes of each model's argmax, as (N, 18) vote shares; ties are broken by the
    mean probability (votes dominate: a tie-break term below one vote's weight is added)."""
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    votes = np.zeros_like(probs[0], dtype=np.float64)
    for wi, p in zip(w, probs):
        votes[np.arange(len(p)), p.argmax(1)] += wi
    return votes + 1e-6 * soft_vote(probs, w)
