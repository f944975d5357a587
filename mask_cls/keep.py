"""``task.keep``: which model a fit keeps, and so which one is reported, calibrated, predicted
and exported, and what its ``val/f1_best`` means.

- ``best``: the checkpoint callback's best epoch (``val/f1``, highest): ``val/f1_best`` is that
  maximum over epochs, an optimistic figure with a small validation set.
- ``loss``: the epoch of the lowest ``val/loss``: its ``val/f1_best`` is that epoch's own
  ``val/f1`` (chosen on validation, but not by the figure it reports).
- ``last``: the schedule's final model (``last.ckpt``): its ``val/f1_best`` is its own ``val/f1``.

Light on purpose: the preflight reads :data:`RULES` before anything heavy is imported.
"""

from __future__ import annotations

import copy as copy_module
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from mask_cls.errors import ConfigError

#: per rule, what the best-checkpoint callback monitors (None: the user's monitor; ``last`` keeps
#: ``last.ckpt`` whatever the callback picked)
RULES: dict[str, tuple[str, str] | None] = {"best": None, "loss": ("val/loss", "min"), "last": None}


def rule(cfg: DictConfig) -> str:
    """The run's ``task.keep`` (``best`` where the task has none), checked."""
    keep = cfg.task.get("keep", "best")
    keep = "best" if keep is None else keep
    if keep not in RULES:
        raise ConfigError(f"task.keep={keep}: one of {', '.join(RULES)} (the model a fit keeps)")
    return str(keep)


def callbacks_config(cfg: DictConfig) -> DictConfig | None:
    """``cfg.callbacks`` with the best-checkpoint callback monitoring what the rule picks by."""
    callbacks = cfg.get("callbacks")
    monitor = RULES[rule(cfg)]
    if monitor is None:
        return callbacks
    if callbacks is None or callbacks.get("model_checkpoint") is None:
        raise ConfigError(f"task.keep={rule(cfg)}: needs callbacks.model_checkpoint (the best-checkpoint "
                          "callback of callbacks=default), which this config removed")
    copy = copy_module.deepcopy(cfg)  # the whole config: its interpolations still resolve
    with open_dict(copy):
        copy.callbacks.model_checkpoint.monitor, copy.callbacks.model_checkpoint.mode = monitor
    return copy.callbacks


def apply(keep: str, metrics: dict[str, Any], ckpt: Any, folder: Path) -> str:
    """Write what the kept model scored into ``metrics`` (``val/f1_best``, ``val/f1_max``,
    ``kept``) and return its checkpoint's path. ``ckpt``: the run's monitoring checkpoint
    callback (None when the config has none: the final weights are kept)."""
    if ckpt is None:
        metrics["kept"] = "last"
        return ""
    highest = metrics.get("val/f1_best")  # the module's running maximum of val/f1
    if keep == "last":
        last = folder / "last.ckpt"
        if not last.is_file():
            raise ConfigError(f"task.keep=last: {last} was not written (callbacks.last_checkpoint writes it "
                              "after every epoch; keep it in the callbacks)")
        path, own = str(last), metrics.get("val/f1")
    else:
        path = ckpt.best_model_path
        at_best = getattr(ckpt, "at_best", {})
        own = float(ckpt.best_model_score) if ckpt.monitor == "val/f1" and ckpt.best_model_score is not None \
            else at_best.get("val/f1")
    metrics.pop("val/f1_best", None)
    if own is not None and math.isfinite(own):
        metrics["val/f1_best"] = float(own)
    if highest is not None and own != highest:
        metrics["val/f1_max"] = highest  # the maximum over epochs, for comparison
    metrics["kept"] = keep
    return path
