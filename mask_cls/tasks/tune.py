"""``task=tune``: Lightning's learning-rate finder (and, with ``task.batch_size=true``, its
batch-size finder) on the composed run: the same data, model and trainer a fit would use.

Writes ``lr_find.png`` (loss against learning rate, the suggestion marked), ``lr_find.csv`` and
``tune.json`` with the suggestion and the one-line override that uses it. The LR finder sets
every parameter group to the same rate while it searches (``finetune.backbone_lr_mult`` applies
again in the fit). The batch-size finder doubles the batch until memory runs out or
``task.max_batch_size``: on a GPU that is the memory limit; on a CPU memory rarely runs out, so
it says it stopped at the cap (choose by throughput there, ``bench/train_step.py``)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omegaconf import DictConfig

from mask_cls.errors import ConfigError
from mask_cls.io import write_csv, write_json
from mask_cls.rundir import log
from mask_cls.tasks import register

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@contextlib.contextmanager
def _finder_lines() -> Iterator[None]:
    """Outside a terminal the LR finder's own tqdm bar (every step joined by carriage returns, the
    log silent until it ends) becomes progress lines at the run's rhythm; on a terminal it stays."""
    from lightning.pytorch.tuner import lr_finder

    from mask_cls import progress

    kind = progress.style()
    if kind == "bar":
        yield
        return
    drawn = lr_finder.tqdm
    lr_finder.tqdm = lambda desc="", total=0, **_: progress.Counter(total, "learning-rate finder", "steps",
                                                                    quiet=kind == "none")
    try:
        yield
    finally:
        lr_finder.tqdm = drawn


def _lr(cfg: DictConfig, parts: Any, out: Path) -> dict[str, Any]:
    import pandas as pd
    from lightning.pytorch.tuner import Tuner

    t = cfg.task
    if not 0 < float(t.min_lr) < float(t.max_lr):
        raise ConfigError(f"task.min_lr={t.min_lr}, task.max_lr={t.max_lr}: need 0 < min_lr < max_lr")
    log.info("learning-rate finder: %d steps from %g to %g", int(t.num_training), float(t.min_lr), float(t.max_lr))
    with _finder_lines():
        finder = Tuner(parts.trainer).lr_find(parts.module, datamodule=parts.dm, min_lr=float(t.min_lr),
                                              max_lr=float(t.max_lr), num_training=int(t.num_training),
                                              early_stop_threshold=t.get("early_stop_threshold"), update_attr=False)
    if finder is None:
        raise ConfigError("task=tune: the learning-rate finder returned nothing (another process of a DDP run?)")
    curve = pd.DataFrame({"lr": finder.results["lr"], "loss": finder.results["loss"]})
    write_csv(curve, out / "lr_find.csv")
    suggestion = finder.suggestion()
    fig = cast("Figure", finder.plot(suggest=suggestion is not None, show=False))
    fig.axes[0].set_title(f"learning-rate finder: {len(curve)} steps; suggested {suggestion:.2e}" if suggestion
                          else f"learning-rate finder: {len(curve)} steps; too few for a suggestion")
    fig.savefig(out / "lr_find.png", dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    found: dict[str, Any] = {"steps": len(curve), "suggested_lr": suggestion,
                             "current_lr": float(cfg.optim.get("lr", math.nan))}
    if len(curve) < int(t.num_training):
        log.warning("the search stopped after %d of %d steps: the loss diverged (task.early_stop_threshold), or the "
                    "epochs ended first (trainer.limit_train_batches, trainer.max_epochs)", len(curve), int(t.num_training))
    if suggestion is not None:
        found["override"] = f"optim.lr={suggestion:.3g}"
        log.info("suggested learning rate %.3g (now %g): add  optim.lr=%.3g  -> %s", suggestion,
                 found["current_lr"], suggestion, out / "lr_find.png")
    else:
        log.warning("no suggested learning rate from %d steps (the rule leaves out the first 10 and the last): "
                    "raise task.num_training", len(curve))
    return found


def _batch_size(cfg: DictConfig, parts: Any) -> dict[str, Any]:
    from lightning.pytorch.tuner import Tuner

    t = cfg.task
    cap = int(t.max_batch_size)
    start = min(int(cfg.data.batch_size), cap)
    log.info("batch-size finder: doubling from %d up to %d, %d steps each", start, cap, int(t.steps_per_trial))
    size = Tuner(parts.trainer).scale_batch_size(parts.module, datamodule=parts.dm, mode="power",
                                                 steps_per_trial=int(t.steps_per_trial), init_val=start,
                                                 max_val=cap)
    at_cap = size is not None and size >= cap
    found = {"batch_size": size, "at_cap": at_cap, "override": f"data.batch_size={size}" if size else None}
    log.info("batch size %s fits%s: add  data.batch_size=%s", size,
             f" (stopped at task.max_batch_size={cap}: memory did not run out)" if at_cap else "", size)
    return found


@register("tune")
def tune(cfg: DictConfig, out: Path) -> float | None:
    from mask_cls.engine import build

    if not cfg.task.lr_find and not cfg.task.batch_size:
        raise ConfigError("task=tune: nothing to do (task.lr_find=false and task.batch_size=false)")
    results: dict[str, Any] = {}
    if cfg.task.batch_size:  # first: the learning rate depends on the batch size
        results["batch_size"] = _batch_size(cfg, build(cfg, out, with_loggers=False))
        size = results["batch_size"].get("batch_size")
        if size:  # the learning rate is searched at the batch size found, the one the user will train with
            cfg = cfg.copy()
            cfg.data.batch_size = int(size)
    if cfg.task.lr_find:
        results["lr_find"] = _lr(cfg, build(cfg, out, with_loggers=False), out) | {"batch_size": int(cfg.data.batch_size)}
    write_json(results, out / "tune.json")
    overrides = [r["override"] for r in results.values() if r.get("override")]
    if overrides:
        print("use: " + " ".join(overrides))
    suggestion = results.get("lr_find", {}).get("suggested_lr")
    return float(suggestion) if suggestion is not None else None
