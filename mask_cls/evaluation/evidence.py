"""Per arm: does it differ from the reference by more than seed noise?

Each arm against one reference arm: paired by seed where at least two seeds match, else Welch's
test on the runs as they are (and the row says which). The p-values of the arms tested are
Holm-corrected together, and an arm's verdict is **shown** only when its corrected p is below
``alpha``; one run on either side is **one seed** (no test). Picking the best of several arms and
then quoting its p-value is still the winner's curse: ``task=confirm`` re-measures it on new seeds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mask_cls.evaluation.arms import Arm
from mask_cls.evaluation.difference import Difference, holm, paired, welch

COLUMNS = ["arm", "verdict", "n", "failed", "seeds", "mean", "sd", "diff", "lo", "hi", "p", "p_holm", "test",
           "overrides"]


def _mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n if n else math.nan
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, sd


def difference(arm: Arm, ref: Arm) -> Difference:
    a, b = arm.scores, ref.scores
    if len(set(a) & set(b)) >= 2:
        return paired(a, b)
    return welch(list(a.values()), list(b.values()))


def _verdict(arm: Arm, ref: Arm, d: Difference | None, p_holm: float, alpha: float) -> str:
    if arm is ref:
        return "reference"
    if not arm.scores or not ref.scores:
        return "no score"
    if len(arm.scores) < 2 or len(ref.scores) < 2:
        return "one seed"
    if d is None or not d.tested:
        return "not tested (no spread)"
    return "shown" if p_holm < alpha else "not shown"


def table(arms: list[Arm], ref: Arm, alpha: float = 0.05) -> list[dict[str, Any]]:
    """One row per arm (the reference first), in ``COLUMNS``."""
    ordered = [ref, *[a for a in arms if a is not ref]]
    diffs = [None if a is ref else difference(a, ref) for a in ordered]
    tested = [d.p if d is not None and len(a.scores) > 1 and len(ref.scores) > 1 else math.nan
              for a, d in zip(ordered, diffs)]
    adjusted = holm(tested)
    rows = []
    for arm, d, p, p_holm in zip(ordered, diffs, tested, adjusted):
        mean, sd = _mean_sd(list(arm.scores.values()))
        rows.append({"arm": arm.name, "verdict": _verdict(arm, ref, d, p_holm, alpha), "n": len(arm.scores),
                     "failed": sum(1 for j in arm.jobs if math.isnan(j.value)),
                     "seeds": " ".join(str(s) for s in arm.scores), "mean": mean, "sd": sd,
                     "diff": d.diff if d else math.nan, "lo": d.lo if d else math.nan,
                     "hi": d.hi if d else math.nan, "p": p, "p_holm": p_holm,
                     "test": (d.test if d else "") or "", "overrides": " ".join(arm.identity)})
    return rows


def figure(rows: list[dict[str, Any]], per_seed: dict[str, list[float]], path: Path, title: str) -> Path:
    """Each arm's difference from the reference with its 95% interval against zero (the
    reference's line); the per-seed differences as dots; shown arms in colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mask_cls.evaluation.figures import save

    others = rows[1:]
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.55 * max(1, len(others))))
    ax.axvline(0.0, color="0.3", lw=1.2, ls="--")
    for y, r in enumerate(reversed(others)):
        colour = {"shown": "tab:red" if r["diff"] < 0 else "tab:green"}.get(r["verdict"], "tab:gray")
        if not math.isnan(r["lo"]):
            ax.plot([r["lo"], r["hi"]], [y, y], color=colour, lw=3, solid_capstyle="butt")
        if not math.isnan(r["diff"]):
            ax.plot([r["diff"]], [y], "o", color=colour, ms=8)
        dots = per_seed.get(r["arm"], [])
        ax.plot(dots, [y + 0.18] * len(dots), ".", color="0.45", ms=5)
        p = "" if math.isnan(r["p_holm"]) else f", p_holm={r['p_holm']:.3g}"
        ax.annotate(f"{r['verdict']} (n={r['n']}{p})", (1.0, y), xycoords=("axes fraction", "data"),
                    xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    ax.set_yticks(range(len(others)), [_label(r["arm"]) for r in reversed(others)])
    ax.set_ylim(-0.7, len(others) - 0.3)
    ax.set_xlabel("difference from the reference (95% interval; dots: per seed)")
    ax.set_title(f"{title}\nreference (the dashed line at 0): {_label(rows[0]['arm'], 60)}, mean {rows[0]['mean']:.4f}",
                 fontsize=10)
    return save(fig, path)


def _label(name: str, width: int = 38) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
