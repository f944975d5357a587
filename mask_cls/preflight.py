"""The first second of a run: one line saying what is about to happen, then every check that
needs nothing heavy (no pandas, torch, Lightning or timm), so a wrong path, a missing column or
a misspelt backbone is one line at once instead of after a minute of imports.

What a task reads is declared in its YAML, ``needs: [...]``:
- ``train``: the layout's training table (its file, columns and image folder);
- ``eval``: the eval set (dropped with ``images=FOLDER``);
- ``model``: a backbone to build (its timm name, a ``model.weights`` file);
- ``run``: ``run_dir=`` (a train run, a cv run or a ``.ckpt``); ``teacher``: ``teacher=`` (the same kinds);
- ``unlabeled``: ``unlabeled=eval`` (the eval set) or a folder;
- ``files``: ``submission=`` and ``answers=``.
The full readers check the same things again later; these checks only come first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from mask_cls import keep
from mask_cls.errors import ConfigError, DataError

log = logging.getLogger("mask_cls")


def needs(cfg: DictConfig) -> set[str]:
    found = set(cfg.task.get("needs") or ())
    if cfg.task.name == "predict" and cfg.get("images"):
        found.discard("eval")
    if "unlabeled" in found and str(cfg.get("unlabeled", "eval")) == "eval":
        found.add("eval")
    return found


def _choice(group: str, default: str) -> str:
    """The option of ``group`` as typed (``data=mask``), where Hydra knows it."""
    from hydra.core.hydra_config import HydraConfig

    return str(HydraConfig.get().runtime.choices.get(group) or default) if HydraConfig.initialized() else default


def _runs(cfg: DictConfig, key: str = "run_dir") -> list[str]:
    runs = cfg.get(key)
    if not runs:
        return []
    return [str(r) for r in runs] if isinstance(runs, ListConfig | list) else [str(runs)]


def announce(cfg: DictConfig, out: Path) -> None:
    """The first line: task, data, model or runs, run directory."""
    want = needs(cfg)
    parts = [f"task={cfg.task.name}"]
    data = cfg.get("data")
    if data is not None and want & {"train", "eval", "unlabeled"}:
        root = data.get("root") or data.get("csv")
        parts.append(f"data={root} ({data.get('layout', 'competition')} layout"
                     + (", drawn on first use)" if data.get("synth") is not None else ")"))
    if "model" in want:
        parts.append(f"model={cfg.model.backbone} + {str(cfg.head.get('_target_', '')).rsplit('.', 1)[-1]}")
    if "run" in want and _runs(cfg):
        parts.append(f"from run_dir={', '.join(_runs(cfg))}")
    if "teacher" in want and _runs(cfg, "teacher"):
        parts.append(f"teacher={', '.join(_runs(cfg, 'teacher'))}")
    if cfg.task.name == "predict" and cfg.get("images"):
        parts.append(f"images={cfg.images}")
    parts.append(f"-> {out}")
    log.info("mask_cls %s", " ".join(parts))


def show_config(cfg: DictConfig) -> None:
    """The config groups chosen and the overrides typed (secrets masked), two lines, like the
    config tree lightning-hydra-template prints first; ``extras.print_config=false`` turns it off."""
    from hydra.core.hydra_config import HydraConfig

    from mask_cls.run_config import RECOMPOSED
    from mask_cls.rundir import typed_overrides
    from mask_cls.secrets import mask_text

    if not (cfg.get("extras") or {}).get("print_config", True) or not HydraConfig.initialized():
        return
    made = RECOMPOSED.get("choices") if RECOMPOSED.get("run") else None  # a command that reads a run: its groups
    choices = {k: v for k, v in reversed((made or HydraConfig.get().runtime.choices).items())  # Hydra: last first
               if "/" not in k and k not in ("hydra", "paths") and v is not None}
    log.info("config: %s", " ".join(f"{k}={v}" for k, v in choices.items()))
    if made is not None:
        log.info("recipe of %s: %s", RECOMPOSED["run"], " ".join(RECOMPOSED["recipe"]) or "(the defaults)")
    typed = [mask_text(o) for o in typed_overrides()]
    log.info("changed: %s", " ".join(typed) if typed else "nothing (the defaults)")


def check(cfg: DictConfig) -> None:
    """Every light check of what the task ``needs``; the first problem is one error."""
    from mask_cls.data import layouts

    want = needs(cfg)
    if want & {"train", "eval"} and cfg.data.get("synth") is None:
        if cfg.data.get("layout", "competition") != "table" and cfg.data.get("root") is None:
            raise ConfigError(f"data={_choice('data', cfg.data.get('layout', 'competition'))} needs data.root=PATH "
                              "(the dataset's folder)")
        layouts.open(cfg.data).preflight(want)
    if "model" in want:
        keep.rule(cfg)  # task.keep names a rule
        check_backbone(str(cfg.model.backbone))
        weights = cfg.model.get("weights")
        if weights and not Path(str(weights)).is_file():
            raise ConfigError(f"model.weights={weights}: file not found")
    if "run" in want:
        check_runs(cfg)
    if "teacher" in want:
        check_runs(cfg, "teacher")
    if "unlabeled" in want and str(cfg.get("unlabeled", "eval")) != "eval" and not Path(str(cfg.unlabeled)).is_dir():
        raise DataError(f"{cfg.unlabeled}: unlabeled folder not found")
    if cfg.task.name == "predict" and cfg.get("images") and not Path(str(cfg.images)).is_dir():
        raise DataError(f"images={cfg.images}: folder not found")
    if "files" in want:
        for key in ("submission", "answers"):
            value = cfg.get(key)
            if value and Path(str(value)).is_dir():
                raise ConfigError(f"{key}={value} is a folder; give the CSV file in it")


def check_runs(cfg: DictConfig, key: str = "run_dir") -> None:
    from mask_cls.inference.runs import run_checkpoints

    runs = _runs(cfg, key)
    if not runs:
        raise ConfigError(f"task={cfg.task.name} needs {key}=DIR (a train or cv run), or {key}=[DIR1,DIR2]")
    for run in runs:
        if not Path(run).exists():
            raise ConfigError(f"{key}={run}: not found")
        run_checkpoints(run)  # a folder that is not a run: said exactly


def check_backbone(name: str) -> None:
    """A timm name, checked against timm's source without importing timm (4 s on 2 cores)."""
    from mask_cls.models.names import suggestion, timm_names

    if ":" in name or "/" in name:  # a hub name: only timm can tell
        return
    known = timm_names()
    base = name.split(".", 1)[0]  # resnet10t.c3_in1k: a pretrained tag on a model name
    if known and base not in known:
        raise ConfigError(f"model.backbone={name!r} is not a timm model{suggestion(base, known)}")
