"""Every file a run writes lies inside its run directory, whatever key named it, and a run talks
to a network target only when the user typed it.

Checked twice: once before training (the checkpoint callbacks' folder and file names, each
logger's folder, name and version, the MLflow store: one line naming the key) and again at the
moment of writing (every checkpoint passes :class:`mask_cls.checkpoint_io.AtomicCheckpointIO`).
The one way out is a store you name yourself: ``logger.mlflow.tracking_uri=...`` typed on the
command line (a server, or a database you share)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mask_cls.errors import ConfigError

#: keys that send a run's data over the network when changed from their default (never taken
#: from a saved run: ``mask_cls/recipe.py``), with the default that stays local
NETWORK_KEYS = {"logger.mlflow.tracking_uri": None, "logger.wandb.offline": True}


def within(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` lies inside ``root`` once ``..`` and links are resolved."""
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def check_inside(path: str | Path, root: str | Path, key: str) -> None:
    if not within(path, root):
        raise ConfigError(f"{key}: {path} lies outside this run's directory {root}; a run writes only inside it")


def check_writes(out: Path, group_dir: Path, loggers: Iterable[Any], callbacks: Iterable[Any]) -> None:
    """Before training: each checkpoint callback's files and each logger's folder inside ``out``
    (an MLflow store we create: inside ``group_dir``, the run or sweep directory)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    for c in callbacks:
        if isinstance(c, ModelCheckpoint):
            folder = Path(c.dirpath) if c.dirpath else out
            check_inside(folder, out, "callbacks: dirpath")
            check_inside(folder / (c.filename or "x"), out, f"callbacks: filename {c.filename!r}")
    for lg in loggers:
        store = getattr(lg, "_confined", None)
        if store is not None:  # an MLflow store this project creates
            check_inside(store, group_dir, "logger.mlflow.store_dir")
            continue
        if type(lg).__name__ == "MLFlowLogger":  # a store the user typed (tracking_uri): theirs, checked as typed
            continue
        for attr in ("log_dir", "save_dir"):
            try:
                where = getattr(lg, attr, None)
            except (OSError, ValueError, TypeError):
                where = None
            if isinstance(where, str | Path) and where:
                check_inside(where, out, f"logger {type(lg).__name__}.{attr}")


def check_network(cfg: Any, typed: Sequence[str]) -> None:
    """A network target (an MLflow server or shared store, wandb online) only where typed."""
    from omegaconf import OmegaConf

    typed_keys = {t.split("=", 1)[0].lstrip("+~") for t in typed}
    for key, local in NETWORK_KEYS.items():
        value = OmegaConf.select(cfg, key, default=local, throw_on_missing=False)
        if value != local and key not in typed_keys:
            raise ConfigError(f"{key}={value}: a network target or online switch is used only when you type it "
                              "on the command line; refused")
