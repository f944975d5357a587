"""``task=compare runs=[A,B,...]``: the quickest answer to "what changed between these runs?".

Per run its scores (``val/f1_best`` of a train run, ``cv/f1`` of a cv run, ``f1`` of an
evaluate run) and its code (commit, dirty) from ``manifest.json``; then only the config keys
whose values differ between the runs. Each run's files are read as data (plain YAML and JSON,
never resolved, never instantiated, size-capped), only at fixed names inside the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from mask_cls.errors import ConfigError
from mask_cls.inert import csv_cell, terminal
from mask_cls.io import write_csv
from mask_cls.rundir import log
from mask_cls.runfiles import read_json
from mask_cls.tasks import register

#: score files of a run and the keys shown from each
SCORES = {"metrics.json": ("val/f1_best", "val/f1"), "cv.json": ("cv/f1", "cv/f1_mean", "cv/f1_std"),
          "scores.json": ("f1",), "report/scores.json": ("f1",)}
#: how a score is shown where its file's key alone would mislead (the report's F1 is with TTA, all
#: validation images: the figure the run printed and its submission follows; val/f1 is without TTA)
SHOWN = {("report/scores.json", "f1"): "report f1 (tta)"}
MAX_BYTES = 5_000_000  # a run's JSON or YAML file larger than this is not a run file
#: keys that differ between any two runs by construction (where each run writes)
SKIP = ("paths.", "hydra.", "run_dir", "runs")
MISSING = "(absent)"
MAX_RUNS = 100  # runs one comparison reads (a sweep's jobs counted)
MAX_SHOWN = 8  # runs whose key table is printed (more: compare.csv only)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    content = read_json(path, MAX_BYTES)
    return content if isinstance(content, dict) else {}


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a plain config: ``{"data": {"root": x}}`` -> ``{"data.root": x}``."""
    if isinstance(node, dict) and node:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    return {prefix[:-1]: node}


def describe(run: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scores and code, flattened config) of one run."""
    from mask_cls.manifest import NAME
    from mask_cls.run_config import run_files, saved_config

    folder = run_files(run)
    if folder is not None and (folder / "config.yaml").stat().st_size > MAX_BYTES:  # before YAML reads it
        raise ConfigError(f"{folder / 'config.yaml'}: larger than {MAX_BYTES} bytes; not a run config")
    found = saved_config(run)
    if found is None:
        raise ConfigError(f"{run}: not a run (no .hydra/config.yaml)")
    config = found[1]
    head: dict[str, Any] = {}
    for name, keys in SCORES.items():
        content = _read_json(run / name)
        head |= {SHOWN.get((name, k), k): content[k] for k in keys if isinstance(content.get(k), int | float)}
    code = _read_json(run / NAME).get("code")
    code = code if isinstance(code, dict) else {}
    head["commit"] = (str(code["commit"])[:10] + ("+dirty" if code.get("dirty") else "")) if code.get("commit") \
        else "(unknown: no commit in manifest.json)"
    own = str(run.resolve())  # where the run wrote: the same place for every run, spelt <run>
    return head, {k: v.replace(own, "<run>") if isinstance(v, str) else v
                  for k, v in flatten(config).items() if not k.startswith(SKIP)}


def differing(configs: list[dict[str, Any]]) -> list[str]:
    """The keys whose value is not the same in every run (a key some runs lack included)."""
    keys = sorted(set().union(*configs))
    return [k for k in keys if len({json.dumps(c.get(k, MISSING), sort_keys=True, default=str) for c in configs}) > 1]


def _names(paths: list[str]) -> list[str]:
    """Column names: the folder names (a sweep job's number with the overrides that set it apart),
    or the paths below their common folder where those repeat."""
    names = [Path(p).name for p in paths]
    if all(n.isdigit() for n in names):  # sweep jobs 0, 1, ...: named by what they changed
        lines = [_overrides(Path(p)) for p in paths]
        shared = set.intersection(*(set(x) for x in lines)) if lines else set()
        names = [" ".join([n + ":", *[o for o in x if o not in shared]]) for n, x in zip(names, lines)]
    if len(set(names)) == len(names) and all(names):
        return names
    import os

    common = os.path.commonpath([str(Path(p).resolve()) for p in paths])
    rel = [os.path.relpath(Path(p).resolve(), common) for p in paths]
    return rel if len(set(rel)) == len(rel) else [f"{i}:{p}" for i, p in enumerate(paths)]


def _overrides(run: Path) -> list[str]:
    """A run's recorded overrides (``.hydra/overrides.yaml``), read as data; none where unreadable."""
    from mask_cls.runfiles import read_yaml

    path = run / ".hydra" / "overrides.yaml"
    try:
        found = read_yaml(path) if path.is_file() else []
    except ConfigError:
        return []
    return [str(o) for o in found] if isinstance(found, list) else []


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _run_paths(cfg: DictConfig) -> list[str]:
    runs = cfg.get("runs")
    paths = [str(r) for r in runs] if isinstance(runs, ListConfig | list) else [str(runs)] if runs else []
    if not paths:
        raise ConfigError("task=compare needs runs=[RUN1,RUN2,...] (run directories, or sweep directories)")
    return paths


@register("compare")
def compare(cfg: DictConfig, out: Path) -> None:
    from mask_cls.evaluation.arms import job_folders

    folders = job_folders(_run_paths(cfg))
    if len(folders) < 2:
        raise ConfigError(f"runs: {len(folders)} run; task=compare needs two or more (runs, or a sweep's jobs)")
    if len(folders) > MAX_RUNS:
        raise ConfigError(f"runs: {len(folders)} runs; task=compare reads at most {MAX_RUNS}")
    finished = [str(f) for f in folders if (f / ".hydra" / "config.yaml").is_file()]
    if len(finished) >= 2:
        _key_table(finished, out)
    from mask_cls.evaluation.arms_report import compare_arms

    rows = compare_arms(folders, cfg.get("task") or {}, out)
    if rows:
        log_arms(cfg, out, rows, folders)


#: logger kinds that take the arms table (the CSV logger's table is arms.csv itself)
TABLE_LOGGERS = ("wandb", "mlflow")


def log_arms(cfg: DictConfig, out: Path, rows: list[dict[str, Any]], folders: list[Path],
             group: str | None = None) -> None:
    """The arms table, its figure and each arm's difference to the loggers of this command, as a
    run named ``compare`` in the group of the sweep it reads (wandb's group, MLflow's ``group``
    tag): ``logger=wandb`` on task=compare puts the answer beside the sweep's jobs."""
    parents = {f.parent for f in folders}
    group = group or (parents.pop().name if len(parents) == 1 else out.name)
    node = cfg.get("logger") or {}
    kinds = [k for k in TABLE_LOGGERS if k in node]
    if not kinds:
        logged = sorted({k for f in folders for k in _logger_kinds(f)} & set(TABLE_LOGGERS))
        if logged:
            log.info("the runs logged to %s: add logger=%s to this command to put the table in their group %s",
                     " and ".join(logged), logged[0], group)
        return
    from omegaconf import OmegaConf

    from mask_cls.engine import in_dir, instantiate_all, with_identity

    c = in_dir(cfg, out)
    OmegaConf.update(c, "_identity", {"name": "compare", "group": group, "job_type": "compare"}, force_add=True)
    columns = list(rows[0])
    metrics = {f"compare/{_metric_key(r['arm'])}/{k}": r[k] for r in rows for k in ("mean", "diff", "p_holm")
               if isinstance(r[k], float) and r[k] == r[k]}
    for lg in instantiate_all(with_identity(c.logger, c)):
        if metrics:
            lg.log_metrics(metrics)
        if type(lg).__name__ == "WandbLogger":
            lg.log_table("compare/arms", columns=columns, data=[[_cell(r[k]) for k in columns] for r in rows])
            if (out / "compare.png").is_file():
                lg.log_image("compare/figure", [str(out / "compare.png")])
        if type(lg).__name__ == "MLFlowLogger":
            for name in ("arms.csv", "compare.json", "compare.png"):
                if (out / name).is_file():
                    lg.experiment.log_artifact(lg.run_id, str(out / name))
        lg.finalize("success")
    log.info("the arms table -> %s (group %s)", ", ".join(kinds), group)


def _metric_key(arm: str) -> str:
    """An arm's name as a metric name every logger takes (MLflow refuses ``=`` and ``,``)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.\- ]", "_", arm)[:200]


def _cell(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def _logger_kinds(run: Path) -> set[str]:
    """The logger kinds a run's saved config names (its ``logger`` keys), read as data."""
    from mask_cls.runfiles import read_yaml

    path = run / ".hydra" / "config.yaml"
    try:
        config = read_yaml(path) if path.is_file() else None
    except ConfigError:
        return set()
    node = config.get("logger") if isinstance(config, dict) else None
    return {str(k) for k in node} if isinstance(node, dict) else set()


def _key_table(paths: list[str], out: Path) -> None:
    described = [describe(Path(p)) for p in paths]
    heads, configs = [d[0] for d in described], [d[1] for d in described]
    changed = differing(configs)
    names = _names(paths)
    score_keys = [k for k in dict.fromkeys(k for h in heads for k in h) if k != "commit"] + ["commit"]
    rows = [{"key": k, **{n: _show(h.get(k, "")) for n, h in zip(names, heads)}} for k in score_keys]
    rows += [{"key": k, **{n: _show(c.get(k, MISSING)) for n, c in zip(names, configs)}} for k in changed]
    import pandas as pd

    table = pd.DataFrame(rows, columns=["key", *names])
    write_csv(table.map(csv_cell), out / "compare.csv")  # a value that starts like a formula stays text
    if len(paths) <= MAX_SHOWN:
        _print(table, paths, len(changed))
    log.info("%d config key(s) differ between %d runs -> %s", len(changed), len(paths), out / "compare.csv")


def _short(cell: str) -> str:
    """Scores at four decimals on screen (compare.csv keeps them whole)."""
    try:
        value = float(cell)
    except ValueError:
        return cell
    return f"{value:.4f}" if "." in cell and len(cell.split(".")[1]) > 4 else cell


def _print(table: Any, paths: list[str], n_changed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=f"{len(paths)} runs: scores, then the {n_changed} config key(s) that differ")
    for column in table.columns:
        shown.add_column(terminal(str(column)), overflow="fold")
    for row in table.itertuples(index=False):
        shown.add_row(*[terminal(_short(str(v))) for v in row])  # a file's escape sequences and markup shown, not run
    Console(width=200).print(shown)
