"""After a multirun or an Optuna sweep: one row per job (its overrides, the objective, its run
directory), sorted by the objective, printed as a table and written as ``sweep_results.csv``
in the sweep directory. A Hydra callback (``conf/hydra/default.yaml``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mask_cls.errors import ConfigError
from mask_cls.runfiles import read_json, read_yaml

if TYPE_CHECKING:  # loaded at the end of a sweep only: every run instantiates this callback
    import pandas as pd

RESULT_FILES = {"cv/f1": "cv.json"}  # the objective's file; every other one is in metrics.json


def failure(job: Path, default: str) -> str:
    failed = job / "failed.txt"
    return f"failed: {failed.read_text().strip()}" if failed.is_file() else default


def job_row(job: Path) -> dict[str, Any]:
    """The row of one job directory."""
    hydra_dir = job / ".hydra"
    if not (hydra_dir / "config.yaml").is_file():
        return {"job": job.name, "overrides": "", "objective": "", "value": math.nan,
                "status": failure(job, "failed"), "run_dir": str(job)}
    config = read_yaml(hydra_dir / "config.yaml") or {}
    overrides = read_yaml(hydra_dir / "overrides.yaml") if (hydra_dir / "overrides.yaml").is_file() else []
    objective = str((config.get("task") or {}).get("optimized_metric") or "val/f1_best")
    value, status = math.nan, "ok"
    try:
        value = float(read_json(job / RESULT_FILES.get(objective, "metrics.json"))[objective])
    except (OSError, ValueError, KeyError, TypeError, ConfigError):  # a failed job has no metrics.json
        status = failure(job, "no result")
    return {"job": job.name, "overrides": " ".join(overrides or []), "objective": objective, "value": value,
            "status": status, "run_dir": str(job)}


def sweep_table(sweep_dir: Path) -> pd.DataFrame:
    import pandas as pd

    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    rows = [job_row(j) for j in jobs]
    # the overrides column keeps what differs between jobs (the swept values); all of them stay
    # in all_overrides
    every = [r["overrides"].split() for r in rows]
    started = [set(ov) for ov, r in zip(every, rows) if r["objective"]]  # a job with no .hydra records nothing
    common = set.intersection(*started) if started else set()
    for r, ov in zip(rows, every):
        r["all_overrides"] = r["overrides"]
        r["overrides"] = " ".join(o for o in ov if o not in common)
    df = pd.DataFrame(rows, columns=["job", "overrides", "objective", "value", "status", "run_dir", "all_overrides"])
    return df.sort_values("value", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def show(df: pd.DataFrame, path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep results ({len(df)} jobs) -> {path}")
    for col in ("job", "overrides", "objective", "value", "status"):
        table.add_column(col, justify="right" if col in ("job", "value") else "left")
    for r in df.itertuples():
        table.add_row(str(r.job), r.overrides, r.objective, "" if math.isnan(r.value) else f"{r.value:.4f}", r.status)
    Console().print(table)


class SweepResults(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        if "study_name" in sweeper:  # Optuna: which study this sweep adds to, and where it lives
            import logging

            logging.getLogger("mask_cls").info("Optuna study %s in %s (the same task, data and search space add "
                                               "trials to it)", sweeper.study_name, sweeper.storage or "memory")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mask_cls.io import write_csv

        sweep_dir = Path(config.hydra.sweep.dir)
        if not sweep_dir.is_dir():
            return
        df = sweep_table(sweep_dir)
        path = write_csv(df, sweep_dir / "sweep_results.csv")
        show(df, path)
        import logging

        params = config.hydra.sweeper.get("params") or {}  # Optuna's search space: searched even where no trial varied it
        for line in next_steps(df, sweep_dir, [str(k) for k in params]):
            logging.getLogger("mask_cls").info("%s", line)


def next_steps(df: pd.DataFrame, sweep_dir: Path, searched: list[str] | None = None) -> list[str]:
    """What to run next: the best job is the maximum of noisy scores (the winner's curse), so
    compare the arms over seeds, and confirm the best job on fresh seeds against the recipe
    without what the sweep changed."""
    from mask_cls.evaluation.arms import key_of

    ok = df[df.status == "ok"]
    if ok.empty:
        return []
    best = ok.iloc[0]
    keys = {key_of(o) for o in " ".join(df.overrides).split()} | set(searched or ())
    swept = sorted(keys - {"seed"})
    seeds = "arms over their seeds" if "seed" in keys else "one seed each: sweep seed=0,1,2 too to test anything"
    lines = [f"best job: {best.job} ({best.overrides or 'no override of its own'}) {best.objective}={best.value:.4f}: "
             "the maximum of noisy scores; is it more than seed noise?",
             f"  python run.py task=compare runs={sweep_dir}   # {seeds}"]
    if swept:
        lines.append(f"  python run.py task=confirm runs=[{sweep_dir / str(best.job)}] task.without=[{','.join(swept)}] "
                     "task.seeds=5   # on new seeds, against the recipe without what the sweep changed")
    return lines



def study_seed(seed, storage=None, study_name=None) -> int | None:
    """``seed`` plus the number of trials the stored study already holds, so that a resumed
    Optuna study draws new parameters instead of repeating trial 0's (resolver ``study_seed``)."""
    if seed is None:
        return None
    done = 0
    if storage and str(storage).startswith("sqlite:///"):
        # the study's SQLite file: its folder must exist for Optuna to create it (a fresh working
        # directory has no outputs/ yet), and a file not there yet holds no trials
        db = Path(str(storage)[len("sqlite:///"):])
        db.parent.mkdir(parents=True, exist_ok=True)
        if not db.is_file():
            return int(seed)
    if storage and study_name:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            done = len(optuna.load_study(study_name=str(study_name), storage=str(storage)).trials)
        except KeyError:  # a new study
            done = 0
    return int(seed) + done
