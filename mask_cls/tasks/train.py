"""``task=train``: fit one fold, keep the best checkpoint, write metrics.json and a submission."""

from __future__ import annotations

import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from mask_cls.data.datamodule import MaskDataModule
from mask_cls.evaluation.submission import write_submission
from mask_cls.io import write_json
from mask_cls.labels import NUM_CLASSES
from mask_cls.module import MaskClassifier, load_checkpoint
from mask_cls.tasks import register
from mask_cls.tasks.common import fresh_run_dir, log, plain


def module_config(cfg: DictConfig) -> dict:
    """The part of the config a checkpoint needs to rebuild its model."""
    return {k: plain(cfg[k]) for k in ("model", "head", "loss", "optim", "sched")} | {
        "normalize": plain(cfg.model.normalize)
    }


def _instantiate_all(node) -> list:
    return [instantiate(v) for v in (node or {}).values() if v is not None and "_target_" in v]


def predict_probs(fit_trainer: pl.Trainer, module: MaskClassifier, dm: MaskDataModule) -> np.ndarray:
    """Softmax probabilities for the whole eval set, in info.csv order.

    A separate single-device trainer: no batch limits from the fit's settings, and no
    distributed sampler padding or reordering rows.
    """
    trainer = pl.Trainer(accelerator=fit_trainer.accelerator, devices=1, logger=False,
                         precision=fit_trainer.precision, enable_model_summary=False,
                         enable_progress_bar=fit_trainer.progress_bar_callback is not None)
    batches = trainer.predict(module, datamodule=dm)
    return torch.cat(batches).numpy()


@register("train")
def train(cfg: DictConfig) -> float | None:
    out = fresh_run_dir(cfg)
    dm: MaskDataModule = instantiate(cfg.data)
    dm.prepare_data()  # read and check the data before building anything heavy: fail fast
    dm.setup("fit")
    if cfg.task.predict and dm.has_eval():
        dm.setup("predict")
    pl.seed_everything(cfg.seed, workers=True)
    counts = dm.train_table["label"].value_counts().reindex(range(NUM_CLASSES), fill_value=0)
    module = MaskClassifier(module_config(cfg) | {"class_counts": [int(c) for c in counts]})
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.fit(module, datamodule=dm, ckpt_path=cfg.get("ckpt_path"))

    ckpt = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best_path = ckpt.best_model_path if ckpt else ""
    if ckpt and ckpt.best_model_score is not None:
        metrics["val/f1_best"] = float(ckpt.best_model_score)
    metrics["best_checkpoint"] = best_path
    metrics["epochs"] = trainer.current_epoch
    write_json(metrics, out / "metrics.json")
    log.info("val/f1=%.4f  val/f1_best=%.4f  -> %s", metrics.get("val/f1", float("nan")),
             metrics.get("val/f1_best", float("nan")), out / "metrics.json")

    if trainer.fast_dev_run:
        log.info("fast_dev_run: no submission written")
    elif cfg.task.predict and dm.has_eval():
        best = load_checkpoint(best_path) if best_path else module
        probs = predict_probs(trainer, best, dm)
        path = write_submission(dm.eval_table, probs.argmax(1), out / "submission.csv")
        log.info("submission (%d rows, %s checkpoint) -> %s", len(probs),
                 Path(best_path).name if best_path else "last", path)

    value = metrics.get(cfg.task.optimized_metric)
    if value is not None and not math.isfinite(value):
        raise FloatingPointError(f"{cfg.task.optimized_metric} is {value}")
    return value
