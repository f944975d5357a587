"""Schedules over training progress ``t`` (0 at the first step, 1 at the last).

Training Signal Annealing (UDA): a labeled example whose true-class probability exceeds
``alpha(t) * (1 - 1/K) + 1/K`` leaves the supervised loss, so that the few labels are not
memorised before the unlabeled signal arrives. ``K`` is the number of classes of the output.

Ramps of the consistency weight: constant, linear over the first ``length`` of training, or
the original solution's "gradual" ``epoch / max_epochs`` (0 for the whole first epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable

TSA: dict[str, Callable[[float], float]] = {
    "linear": lambda t: t,
    "log": lambda t: 1 - math.exp(-5 * t),
    "exp": lambda t: math.exp(5 * (t - 1)),
}


def tsa_threshold(schedule: str, t: float, k: int) -> float | None:
    """The TSA threshold at progress ``t`` for ``k`` classes; None for ``none`` (keep all)."""
    if schedule in (None, "none"):
        return None
    alpha = TSA[schedule](min(max(t, 0.0), 1.0))
    return alpha * (1 - 1 / k) + 1 / k


RAMPS: dict[str, Callable[[float, int, int, float], float]] = {
    "constant": lambda t, epoch, max_epochs, length: 1.0,
    "linear": lambda t, epoch, max_epochs, length: min(1.0, t / length) if length > 0 else 1.0,
    "gradual": lambda t, epoch, max_epochs, length: min(1.0, epoch / max_epochs) if max_epochs > 0 else 1.0,
}
