"""The training engine under the tasks: fit one fold (data module, model, loggers, callbacks,
trainer), the eval table, the helpers that predict with a fitted model. Tasks stay thin."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pandas as pd
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from mask_cls import keep, manifest, places, progress
from mask_cls.callbacks import EpochBar, TrainingProgress, check_averaging, swa_checkpoint
from mask_cls.checkpoint_io import AtomicCheckpointIO, load_checkpoint
from mask_cls.data import layouts
from mask_cls.data.datamodule import MaskDataModule
from mask_cls.errors import ConfigError
from mask_cls.inference.predict import pick_device
from mask_cls.io import write_json
from mask_cls.labels import NUM_CLASSES
from mask_cls.loggers import group_dir
from mask_cls.module import MaskClassifier
from mask_cls.module_config import ModuleConfig
from mask_cls.rundir import (
    in_multirun,
    is_worker_process,
    log,
    loggable_config,
    sweep_name,
    swept_first,
    typed_overrides,
)


@dataclass
class FoldResult:
    out: Path
    metrics: dict
    module: MaskClassifier  # the best checkpoint's weights (the last ones without a checkpoint)
    dm: MaskDataModule
    loggers: list
    is_main: bool = True  # False in the other processes of a DDP run: they write nothing
    step: int = 0  # the last logged step: report figures go beside the final scalars


def with_identity(loggers, cfg: DictConfig):
    """The wandb and MLflow logger configs with a run name, group, job type and tags where the
    user left them empty: a sweep job is named after its overrides and grouped by its sweep; a cv
    fold (``_fold_name``, ``_group``) is ``fold_k`` in the cv run's group."""
    kinds = [k for k in _IDENTITY if loggers and k in loggers]
    if not kinds:
        return loggers
    node = loggers.copy()
    ident = cfg.get("_identity") or {}
    overrides = swept_first([o for o in typed_overrides() if not o.startswith("logger")])
    identity = {"name": ident.get("name") or (" ".join(overrides)[:120] or None),
                "group": ident.get("group") or sweep_name() or cfg.task.name,
                "job_type": ident.get("job_type") or "train", "overrides": overrides}
    for kind in kinds:
        for key, value in _IDENTITY[kind](identity).items():
            if node[kind].get(key) in (None, "", cfg.task.name) and value is not None:
                OmegaConf.update(node[kind], key, value, force_add=True)
    return node


#: wandb refuses a tag longer than this (a typed data.root of a long path would stop the run)
WANDB_TAG = 64


def _wandb_identity(ident: dict) -> dict:
    tags = [o if len(o) <= WANDB_TAG else o[:WANDB_TAG - 1] + "…" for o in ident["overrides"][:20]]
    return {"name": ident["name"], "group": ident["group"], "job_type": ident["job_type"], "tags": tags or None}


def _mlflow_identity(ident: dict) -> dict:
    """MLflow has no group: the group and job type are tags (the UI groups runs by a tag)."""
    return {"run_name": ident["name"], "tags": {"group": ident["group"], "job_type": ident["job_type"],
                                                "overrides": " ".join(ident["overrides"])[:500]}}


#: the loggers (``conf/logger`` keys) that show a run's identity, and how each spells it
_IDENTITY = {"wandb": _wandb_identity, "mlflow": _mlflow_identity}


def instantiate_all(node) -> list:
    return [instantiate(v) for v in (node or {}).values() if v is not None and "_target_" in v]


def in_dir(cfg: DictConfig, out: Path, **data) -> DictConfig:
    """A copy of ``cfg`` whose outputs (checkpoints, loggers) go to ``out``."""
    c = cfg.copy()
    OmegaConf.update(c, "paths.output_dir", str(out))
    for k, v in data.items():
        OmegaConf.update(c, f"data.{k}", v)
    return c


def resume_path(cfg: DictConfig) -> str | None:
    """``ckpt_path=FILE``, or ``resume=RUN_DIR`` (its last.ckpt): weights, optimiser, schedule,
    epoch and best score continue; the outputs go to this run's own directory. The file is read
    by :class:`AtomicCheckpointIO` (safe unpickling, callback state confined to this run)."""
    path = cfg.get("ckpt_path")
    if cfg.get("resume"):
        path = Path(cfg.resume) / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise ConfigError(f"resume={cfg.resume}: no checkpoints/last.ckpt there")
    if path and not Path(path).is_file():
        raise ConfigError(f"ckpt_path={path}: checkpoint not found")
    return str(path) if path else None


def check_strategy(cfg: DictConfig) -> None:
    """Plain DDP re-launches the script itself: under a Hydra sweep that re-runs the sweep."""
    t = cfg.trainer
    devices = t.get("devices", 1)
    many = devices == -1 or (isinstance(devices, int) and devices > 1) or not isinstance(devices, int)
    if in_multirun() and str(t.get("strategy", "")).startswith("ddp") and "spawn" not in str(t.get("strategy")) and many:
        raise ConfigError("trainer.strategy=ddp under a multirun (-m) sweep relaunches the whole sweep in every "
                          "process: use trainer=ddp_spawn for sweeps")


@dataclass
class Parts:
    """What a fit is made of, built from the run config (a tuning task uses them without fitting)."""

    dm: MaskDataModule
    module: MaskClassifier
    loggers: list
    callbacks: list
    trainer: pl.Trainer


def build(cfg: DictConfig, out: Path, layout: layouts.Layout | None = None, with_loggers: bool = True) -> Parts:
    """The data (read and checked first: fail fast), the module, loggers, callbacks and trainer."""
    check_strategy(cfg)
    epochs = cfg.trainer.get("max_epochs")
    if epochs is not None and int(epochs) < 1 and int(epochs) != -1 and not cfg.trainer.get("max_steps", -1) > 0:
        raise ConfigError(f"trainer.max_epochs={epochs}: nothing would be trained (a submission from random "
                          "weights); use 1 or more")
    dm: MaskDataModule = instantiate(cfg.data, layout=layout or layouts.open(cfg.data, synth=True))
    dm.prepare_data()  # read and check the data before building anything heavy: fail fast
    dm.setup("fit")
    pl.seed_everything(cfg.seed, workers=True)
    counts = class_counts(dm.rows("train"))
    module = MaskClassifier(ModuleConfig.from_run_config(cfg, counts))
    loggers = instantiate_all(with_identity(cfg.get("logger"), cfg)) if with_loggers else []
    callbacks = instantiate_all(keep.callbacks_config(cfg))
    check_averaging(callbacks)
    places.check_writes(out, group_dir(), loggers, callbacks)  # one line before training, not a file elsewhere
    shown = progress.style()
    callbacks.append(TrainingProgress(lines=shown == "lines", metrics_file=out / "metrics.json"))
    if shown == "bar" and bool(cfg.trainer.get("enable_progress_bar", True)):
        callbacks.append(EpochBar())
    if not loggers:  # nothing to log the learning rate to (logger=none)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    record = {} if is_worker_process() else manifest.add_training(out, dm.fingerprint, cfg.trainer.get("precision"))
    for lg in loggers:
        lg.log_hyperparams(loggable_config(cfg))
        if record:
            lg.log_hyperparams(manifest.flat(record))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                      enable_progress_bar=bool(cfg.trainer.get("enable_progress_bar", True)) and shown == "bar",
                                      plugins=[AtomicCheckpointIO(out / "checkpoints",
                                                                  cfg.get("allow_unsafe_checkpoint", False), root=out)])
    return Parts(dm, module, loggers, callbacks, trainer)


def fit_fold(cfg: DictConfig, out: Path, layout: layouts.Layout | None = None) -> FoldResult:
    """Fit ``cfg.data.fold``; write ``out/metrics.json``; return the best module. ``layout``: the
    run's opened dataset (a cv run's folds share it), else opened here."""
    parts = build(cfg, out, layout)
    dm, module, loggers, callbacks, trainer = parts.dm, parts.module, parts.loggers, parts.callbacks, parts.trainer
    trainer.fit(module, datamodule=dm, ckpt_path=resume_path(cfg))

    ckpt = next((c for c in callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None)
    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    averaged = swa_checkpoint(trainer, module, dm, callbacks, out / "checkpoints")
    best_path = keep.apply(keep.rule(cfg) if averaged is None else "best", metrics, ckpt, out / "checkpoints")
    if averaged is not None:  # the averaged weights are the run's model: reports, predictions and sweeps use them
        best_path, metrics["val/f1_swa"] = averaged
        if "val/f1_best" in metrics:
            metrics["val/f1_best_epoch"] = metrics["val/f1_best"]  # the best single epoch's, for comparison
        metrics["val/f1_best"], metrics["kept"] = metrics["val/f1_swa"], "swa"
    epochs = trainer.current_epoch  # SWA's BatchNorm pass is an extra loop epoch, not a training epoch
    if trainer.max_epochs is not None and trainer.max_epochs > 0:
        epochs = min(epochs, trainer.max_epochs)
    metrics |= {"best_checkpoint": best_path, "epochs": epochs, "fold": dm.fold,
                "fast_dev_run": bool(getattr(trainer, "fast_dev_run", False))}  # noqa: B009 (not in the stubs)
    if dm.pseudo_summary is not None:
        metrics["pseudo"] = dm.pseudo_summary
    if dm.soft_summary is not None:
        metrics["soft_targets"] = dm.soft_summary
    last_step = max(0, trainer.global_step - 1)  # the step Lightning logged the last metrics at
    for lg in loggers:  # TensorBoard's HPARAMS tab shows the best score
        if type(lg).__name__ == "TensorBoardLogger" and "val/f1_best" in metrics:
            lg.log_metrics({"hp_metric": metrics["val/f1_best"]}, step=last_step)
    if trainer.is_global_zero:
        write_json(metrics, out / "metrics.json")
    log.info("fold %d: val/f1=%.4f  val/f1_best=%.4f  -> %s", dm.fold, metrics.get("val/f1", math.nan),
             metrics.get("val/f1_best", math.nan), out / "metrics.json")
    best = load_checkpoint(best_path) if best_path else module
    return FoldResult(out, metrics, best, dm, loggers, trainer.is_global_zero, last_step)


def class_counts(train: pd.DataFrame) -> list[int]:
    """Per-class counts (class weights, rare-class margins) of the labeled training rows only:
    pseudo rows are a model's predictions, not evidence of the class frequencies."""
    labeled = train[~train["pseudo"].astype(bool)] if "pseudo" in train else train
    return [int(c) for c in labeled["label"].value_counts().reindex(range(NUM_CLASSES), fill_value=0)]


def eval_table(cfg: DictConfig, layout: layouts.Layout):
    """info.csv rows (checked) when the task predicts and the data has an eval set, else None."""
    return layout.read_eval() if cfg.task.get("predict") else None


def predict_kwargs(cfg: DictConfig) -> dict:
    return {"batch_size": cfg.data.batch_size, "num_workers": cfg.data.num_workers,
            "on_bad_image": cfg.data.get("on_bad_image", "error"),
            "device": pick_device(cfg.trainer.get("accelerator", "auto"))}


def checked(metrics: dict, key: str) -> float | None:
    """The value a sweeper optimises; NaN or infinity is an error, not a result."""
    value = metrics.get(key)
    if value is not None and not math.isfinite(value):
        raise FloatingPointError(f"{key} is {value}")
    return value


