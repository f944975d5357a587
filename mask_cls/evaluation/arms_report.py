"""``task=compare`` on seeds: the arms table on screen, ``arms.csv``, ``compare.json`` and
``compare.png`` (each arm's difference from the reference with its interval)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mask_cls.errors import ConfigError
from mask_cls.evaluation import arms as A
from mask_cls.evaluation.evidence import COLUMNS, figure, table
from mask_cls.inert import csv_cell, terminal
from mask_cls.io import write_csv, write_json
from mask_cls.rundir import log


def _metric(jobs: list[A.Job], given: str | None) -> str | None:
    """The score compared: ``task.metric``, else the one every run optimises (None where they differ)."""
    found = sorted({j.metric for j in jobs if j.metric})
    if given:
        return str(given)
    return None if len(found) > 1 else (found[0] if found else "val/f1_best")


def _alpha(value: Any) -> float:
    alpha = float(value)
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"task.alpha={value}: a test level between 0 and 1 (e.g. 0.05)")
    return alpha


def _split_line(jobs: list[A.Job]) -> str:
    """What the seeds vary: training noise only (the split fixed), or the data too."""
    from mask_cls.runfiles import read_yaml

    seeds = set()
    for j in jobs:
        path = j.path / ".hydra" / "config.yaml"
        config = read_yaml(path) if path.is_file() else None
        data = config.get("data") if isinstance(config, dict) else None
        seeds.add(str(data.get("split_seed")) if isinstance(data, dict) else "?")
    if len(seeds) == 1:
        return (f"the validation split is the same in every run (data.split_seed={seeds.pop()}): "
                "differences are about training noise, not the data")
    return "the validation split varies between runs (data.split_seed swept): differences include the data"


def _per_seed(arms: list[A.Arm], ref: A.Arm) -> dict[str, list[float]]:
    """Each arm's differences from the reference, seed by seed (or from its mean where unpaired)."""
    base = ref.scores
    mean = math.fsum(base.values()) / len(base) if base else math.nan
    out = {}
    for arm in arms:
        s = arm.scores
        shared = [k for k in s if k in base]
        out[arm.name] = [s[k] - base[k] for k in shared] if len(shared) >= 2 else [v - mean for v in s.values()]
    return out


def compare_arms(folders: list[Path], task: Any, out: Path, reference_job: Path | None = None) -> list[dict[str, Any]]:
    """Read every job, group by recipe, test each arm against the reference (``task.reference``,
    or the arm of ``reference_job``); write and show."""
    given = task.get("metric")
    jobs = [A.read_job(f, given) for f in folders]
    metric = _metric(jobs, given)
    alpha = _alpha(task.get("alpha", 0.05))
    if metric is None:
        log.info("the runs optimise different scores (%s): no arms compared; name one with task.metric=",
                 ", ".join(sorted({j.metric for j in jobs if j.metric})))
        return []
    readable = [j for j in jobs if (j.path / ".hydra" / "config.yaml").is_file()]  # the others: listed below
    if not readable:
        raise ConfigError("runs: no run with a readable .hydra/config.yaml")
    arms = A.group(readable)
    ref = next((a for a in arms if any(j.path == reference_job for j in a.jobs)), None) if reference_job else None
    ref = ref or A.reference(arms, task.get("reference"))
    rows = table(arms, ref, alpha)
    write_csv(_csv(rows), out / "arms.csv")
    write_json(_json(rows, jobs, arms, metric, alpha, ref), out / "compare.json")
    if len(arms) > 1:
        figure(rows, _per_seed(arms, ref), out / "compare.png", f"{metric}: {len(jobs)} runs in {len(arms)} arms")
    how = ("the reference run named" if reference_job else "task.reference" if task.get("reference")
           else "fewest overrides; choose with task.reference=")
    _print(rows, metric, alpha, how)
    log.info("%s", _split_line(readable))
    for j in jobs:
        if j.status != "ok":
            log.info("run %s: %s", j.path, j.status)
    log.info("%d arm(s) of %d run(s) -> %s", len(arms), len(jobs), out / "arms.csv")
    return rows


def _csv(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS).map(csv_cell)


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and math.isnan(v) else v


def _json(rows: list[dict[str, Any]], jobs: list[A.Job], arms: list[A.Arm], metric: str, alpha: float,
          ref: A.Arm) -> dict[str, Any]:
    arm_of = {id(j): a.name for a in arms for j in a.jobs}
    return {"metric": metric, "alpha": alpha, "reference": ref.name, "correction": "holm",
            "arms": [{k: _clean(v) for k, v in r.items()} for r in rows],
            "runs": [{"path": str(j.path), "arm": arm_of.get(id(j)), "seed": j.seed, "value": _clean(j.value),
                      "status": j.status} for j in jobs]}


def _num(v: float, fmt: str = ".4f") -> str:
    return "" if math.isnan(v) else format(v, fmt)


def _print(rows: list[dict[str, Any]], metric: str, alpha: float, how: str) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=f"{metric} by arm against the reference ({how}); Holm-corrected, alpha {alpha}")
    for col in ("arm", "verdict", "n", "mean ± sd", "difference [95% interval]", "p (Holm)", "test"):
        shown.add_column(col, overflow="fold")
    for r in rows:
        interval = "" if math.isnan(r["diff"]) else f"{r['diff']:+.4f} [{_num(r['lo'], '+.4f')}, {_num(r['hi'], '+.4f')}]"
        p = "" if math.isnan(r["p"]) else f"{r['p']:.3g} ({r['p_holm']:.3g})"
        failed = f" +{r['failed']} failed" if r["failed"] else ""
        shown.add_row(terminal(r["arm"]), r["verdict"], f"{r['n']}{failed}", f"{_num(r['mean'])} ± {_num(r['sd'])}",
                      interval, p, r["test"])
    Console(width=200).print(shown)
