"""``task=confirm runs=[BEST,REFERENCE] task.seeds=5``: re-measure a winner on fresh seeds.

The best job of a sweep or an Optuna study was chosen on the same seed noise it is scored on
(the winner's curse). Here each recipe is re-trained with seeds none of its runs used, the two
interleaved seed by seed (a stopped confirmation still holds pairs), and compared as
``task=compare`` does: paired by seed, 95% interval, p-value. Recipes are read from the runs
through the same checked re-composition as ``resume=`` (``run_config.recipe``): what is trained
and how, never where. One run and ``task.without=[keys]``: the reference is that run's recipe
without those keys (their defaults), e.g. an Optuna best trial against the defaults it searched.
Jobs are ``<run>/jobs/<n>`` (a sweep folder); each is ``python run.py`` in its own process.
``task.reuse=EARLIER``: a stopped or repeated confirmation reads the finished jobs of EARLIER
with the same overrides (the same seeds come again from the same runs) instead of training them.
``task.launcher=local|slurm``: each recipe is one ``-m`` sweep over the seeds through that Hydra
launcher (submitit: a cluster runs the seeds side by side), ``hydra.launcher.*`` passed on.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from mask_cls.errors import ConfigError
from mask_cls.rundir import log
from mask_cls.tasks import register

RUN_PY = Path(__file__).resolve().parents[2] / "run.py"
TASKS = ("train", "cv", "distill")  # tasks whose runs are trained recipes with a score
#: typed keys that belong to this command, not to the jobs it starts
OWN = ("task", "runs", "seed", "resume", "run_dir")
MAX_SEEDS = 50


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, ListConfig | list) else [str(value)]


def _quoted(value: str) -> str:
    """A value as one Hydra override token, whatever characters it holds (a path with spaces)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _recipe(run: str, typed: list[str], without: list[str]) -> tuple[str, list[str]]:
    """(task name, override lines) that re-train ``run``: its checked recipe and its data."""
    from mask_cls.evaluation.arms import key_of
    from mask_cls.run_config import compose_project, recipe, saved_config

    found = saved_config(run)
    if found is None:
        raise ConfigError(f"runs: {run}: not a run (no .hydra/config.yaml)")
    task = found[1].get("task")
    name = task.get("name") if isinstance(task, dict) else None
    if name not in TASKS:
        raise ConfigError(f"runs: {run}: a {name} run; task=confirm re-trains {', '.join(TASKS)} runs")
    got = recipe(run, [*typed, "seed"], [], compose_project)
    assert got is not None  # saved_config found the run
    lines, paths, _ = got
    kept = [ln for ln in lines if not any(key_of(ln) == w or key_of(ln).startswith(w + ".") for w in without)]
    return str(name), [*kept, *[f"{k}={_quoted(v)}" for k, v in sorted(paths.items())]]


def _used_seeds(runs: list[str]) -> set[int]:
    """The seeds of the runs and, for a sweep's job, of every job of its sweep: the seeds the
    choice was made on."""
    from mask_cls.evaluation.arms import job_folders, read_job

    folders = [Path(r) for r in runs]
    for run in runs:
        parent = Path(run).parent
        if Path(run).name.isdigit() and not (parent / ".hydra").is_dir():  # a numbered job of a sweep folder
            folders += job_folders([str(parent)])
    seeds = {read_job(f, None).seed for f in folders}
    return {s for s in seeds if isinstance(s, int) and not isinstance(s, bool)}


def seeds_for(spec: Any, used: set[int]) -> list[int]:
    """``task.seeds``: a count (the next seeds after every one used) or a list of new seeds."""
    if isinstance(spec, ListConfig | list):
        seeds = [int(s) for s in spec]
        again = sorted(set(seeds) & used)
        if again:
            raise ConfigError(f"task.seeds: {again} already used by the runs compared; confirmation needs new seeds")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"task.seeds: {seeds} repeats a seed")
    else:
        if isinstance(spec, bool) or not isinstance(spec, int):
            raise ConfigError(f"task.seeds={spec}: a number of seeds (e.g. 5) or a list of new seeds")
        start = max(used, default=-1) + 1
        seeds = list(range(start, start + spec))
    if not 2 <= len(seeds) <= MAX_SEEDS:
        raise ConfigError(f"task.seeds: {len(seeds)} seeds; a paired test needs 2 to {MAX_SEEDS} (5 or more to see "
                          "a few points of F1)")
    return seeds


def _run_job(command: list[str], folder: Path) -> bool:
    """One job in its own process; its output in ``<job>.log`` beside it."""
    with open(folder.parent / f"{folder.name}.log", "w") as sink:
        code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, cwd=Path.cwd()).returncode
    return code == 0


@register("confirm")
def confirm(cfg: DictConfig, out: Path) -> None:
    from mask_cls.evaluation.arms_report import compare_arms
    from mask_cls.rundir import typed_overrides

    runs = _listed(cfg.get("runs"))
    without = _listed(cfg.task.get("without"))
    if not (len(runs) == 2 or (len(runs) == 1 and without)):
        raise ConfigError("task=confirm needs runs=[BEST,REFERENCE] (two runs; the second is the reference), "
                          "or runs=[BEST] task.without=[KEYS] (the reference: BEST without those keys)")
    typed = [t for t in typed_overrides() if key_of_typed(t) not in OWN and not key_of_typed(t).startswith("task.")]
    keys = [key_of_typed(t) for t in typed]
    recipes = [_recipe(r, keys, []) for r in runs] + ([_recipe(runs[0], keys, without)] if len(runs) == 1 else [])
    if recipes[0][0] != recipes[1][0]:
        raise ConfigError(f"runs: a {recipes[0][0]} run and a {recipes[1][0]} run score different things; "
                          "confirm two runs of one task")
    if recipes[0] == recipes[1]:
        raise ConfigError(f"runs: {' and '.join(runs)} train the same recipe" + (f" without {without}" if without else "")
                          + "; nothing to confirm")
    seeds = seeds_for(cfg.task.seeds, _used_seeds(runs))
    earlier = finished(cfg.task.get("reuse"))
    launcher = cfg.task.get("launcher")
    if launcher:
        done, reference = _sweeps(recipes, seeds, typed, out, earlier, str(launcher))
    else:
        done = _train(recipes, seeds, typed, out / "jobs", earlier)
        reference = done[1]
    rows = compare_arms(done, cfg.task, out, reference_job=reference)
    if rows:
        from mask_cls.tasks.compare import log_arms

        log_arms(cfg, out, rows, done, group=out.name)


def _launcher_overrides() -> list[str]:
    """The ``hydra.launcher.*`` settings typed on this command (a SLURM partition, a time limit),
    passed on to the sweeps it starts."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [o for o in HydraConfig.get().overrides.hydra if o.lstrip("+~").startswith("hydra.launcher.")]


def _sweeps(recipes: list[tuple[str, list[str]]], seeds: list[int], typed: list[str], out: Path,
            earlier: dict[tuple[str, ...], Path], launcher: str) -> tuple[list[Path], Path | None]:
    """``task.launcher=local|slurm``: each recipe as one ``-m`` sweep over its new seeds through
    ``hydra/launcher=<launcher>`` (on a cluster the seeds run side by side), in
    ``jobs_0/<n>`` (candidate) and ``jobs_1/<n>`` (reference); jobs an earlier confirmation
    finished are read where they are. (jobs, one job of the reference)."""
    from mask_cls.evaluation.arms import job_folders

    per: list[list[Path]] = []
    for which, (task, lines) in enumerate(recipes):
        base = [f"task={task}", *lines, *typed]
        reused = [earlier[key] for s in seeds if (key := (*base, f"seed={s}")) in earlier]
        todo = [s for s in seeds if (*base, f"seed={s}") not in earlier]
        sweep = out / f"jobs_{which}"
        if reused:
            log.info("confirm: %s, %d seed(s) finished earlier: read in %s", ("candidate", "reference")[which],
                     len(reused), reused[0].parent.parent)
        if todo:
            log.info("confirm: %s, seeds %s: a sweep through hydra/launcher=%s -> %s (its output: %s.log)",
                     ("candidate", "reference")[which], ",".join(map(str, todo)), launcher, sweep, sweep)
            command = [sys.executable, str(RUN_PY), "-m", *base, f"seed={','.join(map(str, todo))}",
                       f"hydra/launcher={launcher}", f"hydra.sweep.dir={_quoted(str(sweep.resolve()))}",
                       *_launcher_overrides()]
            if not _run_job(command, sweep):
                log.warning("confirm: the %s sweep failed (see %s.log); its finished jobs are read",
                            ("candidate", "reference")[which], sweep)
        per.append(reused + (job_folders([str(sweep)]) if sweep.is_dir() and any(sweep.iterdir()) else []))
    return per[0] + per[1], (per[1][0] if per[1] else None)


def finished(earlier: Any) -> dict[tuple[str, ...], Path]:
    """``task.reuse=RUN``: the finished jobs of an earlier confirmation, by their overrides (a job
    there with the same overrides and a score is read in place, not trained again)."""
    from mask_cls.evaluation.arms import job_folders, read_job

    if not earlier:
        return {}
    sweeps = sorted(p for p in Path(str(earlier)).glob("jobs*") if p.is_dir() and not p.is_symlink())
    if not sweeps:
        raise ConfigError(f"task.reuse={earlier}: not a task=confirm run (no jobs/ folder)")
    found: dict[tuple[str, ...], Path] = {}
    for folder in job_folders([str(p) for p in sweeps if any(c.name.isdigit() for c in p.iterdir())]):
        job = read_job(folder, None)
        if job.status == "ok":
            found.setdefault(tuple(job.overrides), folder)
    return found


def _train(recipes: list[tuple[str, list[str]]], seeds: list[int], typed: list[str], jobs: Path,
           earlier: dict[tuple[str, ...], Path]) -> list[Path]:
    """Both recipes seed by seed (candidate, reference, next seed): ``jobs/0``, ``jobs/1``, ...,
    or the finished job of an earlier confirmation with the same overrides."""
    from mask_cls.progress import duration

    jobs.mkdir()
    plan = [(seed, which) for seed in seeds for which in (0, 1)]
    log.info("confirm: %d seeds (%s) x 2 recipes = %d jobs in %s", len(seeds), " ".join(map(str, seeds)), len(plan),
             jobs)
    started, done = time.monotonic(), []
    for i, (seed, which) in enumerate(plan):
        task, lines = recipes[which]
        overrides = [f"task={task}", *lines, *typed, f"seed={seed}"]
        folder = earlier.get(tuple(overrides)) or jobs / str(i)
        ok = folder != jobs / str(i) or _run_job(
            [sys.executable, str(RUN_PY), *overrides, f"hydra.run.dir={_quoted(str(folder.resolve()))}"], folder)
        done.append(folder)
        elapsed = time.monotonic() - started
        log.info("confirm: job %d/%d (%s, seed %d) %s; %s elapsed, about %s left", i + 1, len(plan),
                 ("candidate", "reference")[which], seed,
                 ("reused " + str(folder)) if folder.parent != jobs else "done" if ok else f"FAILED (see {folder}.log)",
                 duration(elapsed), duration(elapsed / (i + 1) * (len(plan) - i - 1)))
    return done


def key_of_typed(line: str) -> str:
    return line.lstrip("+~").split("=", 1)[0]
