"""The run directory below the engine: claimed once per run (run.py), its config recorded, and
never written into when it holds another run's results; plus the small helpers every task shares."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any, cast

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mask_cls.errors import ConfigError

log = logging.getLogger("mask_cls")
#: the marker a run claims its directory with (created exclusively: of two runs started
#: together into one folder, exactly one gets it)
MARKER = ".mask_cls_run"
#: files whose presence means a run already wrote into a folder
RESULT_FILES = (MARKER, "metrics.json", "submission.csv", "checkpoints", "scores.json", "oof.csv", "fold_0",
                "pseudo.csv", "check.json", "prepare.json", "preview.png", ".hydra")
#: the log file Hydra opens in the run directory before the run claims it (``run.py`` -> ``run.log``)
JOB_LOG = "run.log"
_claimed: set[Path] = set()


def run_dir(cfg: DictConfig) -> Path:
    """The Hydra run (or multirun job) directory; ``paths.output_dir`` outside Hydra."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def is_worker_process() -> bool:
    """A DDP process other than global rank 0: it shares the directory rank 0 claimed."""
    return any(int(os.environ.get(k, 0) or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def fresh_run_dir(cfg: DictConfig) -> Path:
    """The run directory, claimed for this run: refused when it holds an earlier run's results
    or another run claimed it first (an exclusive marker file, no race). The run's config goes
    to ``.hydra/`` only after the claim, so a refused run never touches the earlier one's."""
    out = run_dir(cfg).resolve()
    if out in _claimed or is_worker_process():
        return out
    taken = [n for n in RESULT_FILES if (out / n).exists()]
    if out.is_dir() and not taken:  # anything but Hydra's log of this run is another's (a link to write through)
        taken = sorted(n for n in os.listdir(out) if n != JOB_LOG or (out / n).is_symlink())[:5]
    if os.path.islink(run_dir(cfg)):  # ``out`` is resolved: the link is the unresolved path
        raise ConfigError(f"{run_dir(cfg)}: is a link; a run directory must be a real folder")
    if taken:
        raise ConfigError(f"{out}: already holds an earlier run ({', '.join(taken)}); "
                          "choose another hydra.run.dir")
    out.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out / MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise ConfigError(f"{out}: another run claimed this directory first; choose another hydra.run.dir") from None
    with os.fdopen(fd, "w") as f:
        f.write(f"pid {os.getpid()}\n")
    _claimed.add(out)
    save_run_config(cfg, out)
    return out


def claimed(cfg: DictConfig) -> Path | None:
    """This process's claimed run directory, if it claimed one."""
    out = run_dir(cfg).resolve()
    return out if out in _claimed else None


def save_run_config(cfg: DictConfig, out: Path, extra_overrides: tuple[str, ...] = ()) -> None:
    """``.hydra/config.yaml`` (the resolved config, a record for people), ``hydra.yaml`` and
    ``overrides.yaml`` (the recipe ``resume=`` and ``run_dir=`` re-compose from; ``extra_overrides``
    name what the task set itself, e.g. a cv fold's ``data.fold``), written only once the directory
    is claimed (``hydra.output_subdir: null``). Secret-looking values are masked in all three."""
    from mask_cls.io import atomic_write
    from mask_cls.secrets import mask

    try:  # resolved: the run's data root and sizes as they were, readable from anywhere
        plain_cfg = plain(cfg)
        plain_cfg["paths"] = OmegaConf.to_container(cfg.paths, resolve=False)
        data = plain_cfg.get("data")
        for key in ("root", "csv"):
            if isinstance(data, dict) and isinstance(data.get(key), str) and data[key]:
                data[key] = os.path.abspath(data[key])
        saved = mask(plain_cfg)
    except Exception:  # noqa: BLE001 - an unresolvable value: keep the interpolations
        saved = mask(OmegaConf.to_container(cfg, resolve=False))
    files: dict[str, Any] = {"config.yaml": saved}
    if HydraConfig.initialized():
        hydra = HydraConfig.get()
        files |= {"hydra.yaml": mask({"hydra": OmegaConf.to_container(hydra, resolve=False)}),
                  "overrides.yaml": mask([*hydra.overrides.task, *extra_overrides])}
    for name, node in files.items():
        atomic_write(out / ".hydra" / name, partial(_save_yaml, node))


def _save_yaml(node: Any, path: Path) -> None:
    OmegaConf.save(OmegaConf.create(node), path, resolve=False)


def plain(node: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """A resolved plain-Python copy of a config node (for checkpoints and JSON)."""
    if isinstance(node, DictConfig):
        return cast("dict[str, Any]", OmegaConf.to_container(node, resolve=True))
    return dict(node)


def typed_overrides() -> list[str]:
    """The overrides the user typed on the command line (``hydra.*`` ones left out)."""
    if not HydraConfig.initialized():
        return []
    return [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith("hydra.")]


def swept_first(overrides: list[str]) -> list[str]:
    """A multirun job's overrides with the swept ones first (typed with several values, as in
    ``optim.lr=1e-3,3e-3``, or in the sweeper's search space): a run name cut to its first
    characters still tells the jobs of a sweep apart."""
    if not in_multirun():
        return overrides
    import sys

    from hydra.core.override_parser.overrides_parser import OverridesParser

    typed = [a for a in sys.argv[1:] if "=" in a and not a.startswith("-")]
    try:
        swept = {o.key_or_group for o in OverridesParser.create().parse_overrides(typed) if o.is_sweep_override()}
    except Exception:  # noqa: BLE001 (a launcher's own argv: keep the order as typed)
        swept = set()
    swept |= set(HydraConfig.get().sweeper.get("params") or {})
    key = {o: o.split("=", 1)[0].lstrip("+~") for o in overrides}
    return [o for o in overrides if key[o] in swept] + [o for o in overrides if key[o] not in swept]


def sweep_name() -> str | None:
    """The name of the sweep folder this multirun job belongs to."""
    return Path(HydraConfig.get().sweep.dir).name if in_multirun() else None


def in_multirun() -> bool:
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def finish_loggers() -> None:
    """Close the wandb run of this job, if one was started (multirun jobs share a process)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def loggable_config(cfg: DictConfig) -> dict:
    """The resolved config for loggers, with anything that looks like a secret masked."""
    from mask_cls.secrets import mask

    return mask(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
