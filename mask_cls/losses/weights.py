"""Class weights from the training fold's counts (never from validation), normalised to mean 1."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from mask_cls.errors import ConfigError

WEIGHTINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "inverse": lambda n: 1.0 / n,
    "inverse_log1p": lambda n: 1.0 / np.log1p(n),  # seen to work on this task
}


def class_weights(counts: Sequence[float], mode: str | None) -> torch.Tensor | None:
    """Per-class weights, mean 1, or None for ``mode`` none. Empty classes count as 1."""
    if mode in (None, "none"):
        return None
    if mode not in WEIGHTINGS:
        raise ConfigError(f"loss.class_weights={mode!r}: choose none, {', '.join(WEIGHTINGS)}")
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    w = WEIGHTINGS[mode](n)
    return torch.tensor(w / w.mean(), dtype=torch.float32)
