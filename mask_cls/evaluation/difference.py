"""Is a difference between two recipes real or seed noise? The statistics, written once.

A recipe's score moves by several points of macro F1 with the seed alone, so one number per
recipe says little. With the same seeds on both sides the *paired* difference cancels what the
seed does to both (the split, the initialisation, the batch order): its mean, 95% t interval and
two-sided p-value (scipy's ``ttest_rel``). Without matching seeds, Welch's test (unequal
variances). Several recipes compared with one reference: Holm's step-down correction, so that
"shown" keeps its 5% meaning across the whole table. Used by ``task=compare`` and by
``bench/realfaces_report.py`` (one implementation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: a standard deviation of the differences below this is float rounding, not spread: no test
NO_SPREAD = 1e-12


@dataclass(frozen=True)
class Difference:
    """``a - b``: over ``n`` pairs (paired) or ``n`` = min(len(a), len(b)) runs (Welch)."""

    n: int
    diff: float
    lo: float
    hi: float
    p: float
    test: str  # "paired", "welch" or "" (no test: too few runs, or no spread)

    @property
    def tested(self) -> bool:
        return not math.isnan(self.p)


def _nan(n: int, diff: float) -> Difference:
    return Difference(n, diff, math.nan, math.nan, math.nan, "")


def paired(a: Mapping, b: Mapping, level: float = 0.95) -> Difference:
    """``a[s] - b[s]`` over the keys (seeds) both have, with its t interval and p-value."""
    from scipy import stats

    d = [float(a[s]) - float(b[s]) for s in a if s in b and _finite(a[s]) and _finite(b[s])]
    n = len(d)
    mean = math.fsum(d) / n if n else math.nan
    if n < 2:
        return _nan(n, mean)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in d) / (n - 1))
    if sd <= NO_SPREAD:  # equal differences: no test, never p = 0
        return _nan(n, mean)
    se = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return Difference(n, mean, mean - half, mean + half, p, "paired")


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Difference:
    """``mean(a) - mean(b)`` of unpaired runs: Welch's t interval (Welch-Satterthwaite degrees of
    freedom) and two-sided p-value."""
    from scipy import stats

    a, b = [float(x) for x in a if _finite(x)], [float(x) for x in b if _finite(x)]
    n = min(len(a), len(b))
    mean = (math.fsum(a) / len(a) - math.fsum(b) / len(b)) if a and b else math.nan
    if n < 2:
        return _nan(n, mean)
    va, vb = (_var(x) / len(x) for x in (a, b))
    se = math.sqrt(va + vb)
    if se <= NO_SPREAD:
        return _nan(n, mean)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, df))
    return Difference(n, mean, mean - half, mean + half, p, "welch")


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test):
    the k-th smallest of m p-values times (m - k + 1), made monotone, capped at 1."""
    order = sorted((v, i) for i, v in enumerate(p) if not math.isnan(v))
    m = len(order)
    out = [math.nan] * len(p)
    running = 0.0
    for k, (v, i) in enumerate(order):
        running = max(running, min(1.0, (m - k) * v))
        out[i] = running
    return out


def _var(x: list[float]) -> float:
    mean = math.fsum(x) / len(x)
    return math.fsum((v - mean) ** 2 for v in x) / (len(x) - 1)


def _finite(v: object) -> bool:
    try:
        return math.isfinite(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
