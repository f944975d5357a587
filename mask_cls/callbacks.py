"""Lightning callbacks: those of ``conf/callbacks`` (the best-checkpoint keeper that survives
``resume=``, an EMA of the weights whose decay warms up) and the training progress the engine
adds to every fit."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EMAWeightAveraging,
    ModelCheckpoint,
    TQDMProgressBar,
)

from mask_cls import progress
from mask_cls.errors import ConfigError

log = logging.getLogger("mask_cls")


class BestCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that keeps a resumed run's best score and best checkpoint: a worse
    epoch after ``resume=`` never wins. The state it restores has been confined to the new run's
    ``checkpoints/`` (the resumed run's best file copied there) by
    :func:`mask_cls.checkpoint_io.confine_callback_state`, where every callback's state passes;
    Lightning's own class would forget both when the directory changes. Its own class name keeps
    the state of older checkpoints matched to it.

    ``at_best``: the validation scores of the kept epoch (its ``val/f1`` when the monitor is
    another, as with ``task.keep=loss``), kept across ``resume=`` too."""

    at_best: dict[str, float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.at_best, self._noted = {}, self._best()
        self._current: dict[str, float] = {}

    def _best(self) -> tuple[str, float | None]:
        """Which checkpoint is the best (a new best may reuse a file name, never its score)."""
        score = _scalar(self.best_model_score)
        return self.best_model_path, score if score is not None and math.isfinite(score) else None

    def _scores(self, trainer: pl.Trainer) -> dict[str, float]:
        return {k: v for k, v in ((k, _scalar(v)) for k, v in trainer.callback_metrics.items())
                if k.startswith("val/") and v is not None and math.isfinite(v)}

    def _hook(self, hook: Any, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._current = self._scores(trainer)  # this epoch's, until the hook has decided on it
        hook(trainer, pl_module)
        self.at_best, self._noted = self._kept(), self._best()

    def _kept(self) -> dict[str, float]:
        """The scores of the best checkpoint: this epoch's where it just became the best (also while
        the hook saves it, so the file's own state says so)."""
        return dict(self._current) if self.best_model_path and self._best() != self._noted else self.at_best

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._hook(super().on_validation_end, trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._hook(super().on_train_epoch_end, trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "at_best": self._kept()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        saved = state_dict.get("at_best")  # a checkpoint is data: only names and finite numbers come back
        self.at_best = {k: float(v) for k, v in list(saved.items())[:100] if isinstance(k, str) and k.startswith("val/")
                        and isinstance(v, (int, float)) and math.isfinite(v)} if isinstance(saved, dict) else {}
        self._noted = self._best()


def warmup_decay(decay: float, updates: int | torch.Tensor) -> float | torch.Tensor:
    """``min(decay, (1 + n) / (10 + n))`` after n averaged updates (the ``num_updates`` rule of
    TensorFlow's ExponentialMovingAverage): early updates move the average quickly."""
    n = torch.as_tensor(updates, dtype=torch.float64)
    return torch.clamp((1 + n) / (10 + n), max=decay)


class WarmupEMA(EMAWeightAveraging):
    """Lightning's EMA of the weights (validated and saved in checkpoints) with a warming decay.
    A fixed decay of 0.999 keeps 0.999^350 = 70% of the *initial* weights after the ~350 steps
    of a short fine-tune, and that average is what validates and predicts (on REALFACES it
    scored macro F1 0.12 against 0.50 without EMA); with the warm-up the average starts at the
    trained weights and reaches ``decay`` only after ~10,000 updates (decay 0.999)."""

    def __init__(self, decay: float = 0.999, warmup: bool = True, **kwargs: Any) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"callbacks.ema.decay={decay}: must be in [0, 1]")
        super().__init__(decay=decay, **kwargs)
        if warmup:
            self._kwargs["avg_fn"] = self._warm_avg(decay)

    @staticmethod
    def _warm_avg(decay: float):
        @torch.no_grad()
        def avg(ema: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor) -> torch.Tensor:
            d = torch.as_tensor(warmup_decay(decay, num_averaged)).to(ema.dtype) if ema.is_floating_point() else decay
            return d * ema + (1 - d) * current

        return avg


def _batch_size(batch: Any) -> int:
    """Labeled images in a training batch as the module receives it: a ``Labeled`` (its ``x``),
    UDA's mapping (its labeled part), or a tuple whose first item is the images."""
    if isinstance(batch, dict):
        batch = batch.get("labeled")
    first = getattr(batch, "x", None)
    if first is None:
        first = batch[0] if isinstance(batch, list | tuple) else batch
    return int(first.shape[0]) if hasattr(first, "shape") and len(first.shape) else 0


def _scalar(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


class TrainingProgress(Callback):
    """What a training run says while it trains (added by the engine; ``mask_cls.progress``
    decides bar or lines). Per epoch, always: train loss, val loss, validation F1, the best so far
    and the time (also on a terminal, where the bar is gone once the epoch ends). With ``lines``:
    inside each epoch a line at a steady rhythm (epoch, step/total, loss, lr, images/s, time
    left). At each epoch's end the loggers are flushed, so ``csv/metrics.csv`` follows the run,
    and ``metrics_file`` holds the scores so far (``"running": true`` until the run writes its
    final one)."""

    def __init__(self, lines: bool, metrics_file: str | Path | None = None) -> None:
        self.lines, self.metrics_file = lines, metrics_file

    def on_train_start(self, trainer, pl_module) -> None:
        self.steps = int(trainer.num_training_batches) if trainer.num_training_batches != float("inf") else 0
        self.epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        self.fit_start, self.done_steps = time.monotonic(), 0
        params = sum(p.numel() for p in pl_module.parameters())
        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        config = getattr(pl_module, "hparams", {}).get("config", {}) if hasattr(pl_module, "hparams") else {}
        model = (config.get("model") or {}).get("backbone", type(pl_module).__name__)
        if trainer.is_global_zero:  # one process speaks for a DDP run
            log.info("training %s (%.2f M parameters, %.2f M trainable): %s epoch(s) of %d step(s)", model,
                     params / 1e6, trainable / 1e6, self.epochs or "?", self.steps)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epoch_start, self.images, self.rhythm = time.monotonic(), 0, progress.Rhythm()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.images += _batch_size(batch)
        self.done_steps += 1
        if not self.lines or not trainer.is_global_zero or not self.rhythm.due():
            return
        loss = _scalar(outputs.get("loss") if isinstance(outputs, dict) else outputs)
        elapsed = time.monotonic() - self.epoch_start
        per_step = (time.monotonic() - self.fit_start) / max(1, self.done_steps)
        total = self.steps * (self.epochs or trainer.current_epoch + 1)
        lrs = [g["lr"] for opt in trainer.optimizers for g in opt.param_groups]
        log.info("epoch %d/%s step %d/%d: loss %s, lr %s, %.1f images/s, %s left", trainer.current_epoch + 1,
                 self.epochs or "?", batch_idx + 1, self.steps, f"{loss:.4f}" if loss is not None else "?",
                 f"{max(lrs):.2e}" if lrs else "?", self.images / elapsed if elapsed > 0 else 0.0,
                 progress.duration(per_step * max(0, total - self.done_steps)))

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.val_start, self.val_rhythm = time.monotonic(), progress.Rhythm(at_once=False)  # short ones say nothing

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self.lines or trainer.sanity_checking or not trainer.is_global_zero or not self.val_rhythm.due():
            return
        total = int(sum(trainer.num_val_batches))
        rate = (batch_idx + 1) / max(1e-9, time.monotonic() - self.val_start)
        log.info("epoch %d/%s validating: batch %d/%d, %s left", trainer.current_epoch + 1, self.epochs or "?",
                 batch_idx + 1, total, progress.duration((total - batch_idx - 1) / rate))

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        m = {k: _scalar(v) for k, v in trainer.callback_metrics.items()}
        f1 = m.get("val/f1")
        # the checkpoint callbacks run after this one (Lightning orders them last): this epoch counts too
        # (only those that monitor val/f1: task.keep=loss's monitors a loss, not an F1)
        saved = [_scalar(c.best_model_score) for c in trainer.callbacks
                 if isinstance(c, ModelCheckpoint) and c.monitor == "val/f1" and c.best_model_score is not None]
        best = max((s for s in (*saved, f1, m.get("val/f1_best")) if s is not None), default=None)  # + the module's running maximum
        for logger in trainer.loggers:
            logger.save()
        if not trainer.is_global_zero:
            return
        parts = [f"train loss {m['train/loss']:.4f}" if m.get("train/loss") is not None else None,
                 f"val loss {m['val/loss']:.4f}" if m.get("val/loss") is not None else None,
                 f"val/f1 {f1:.4f}" + (f" (best {best:.4f})" if best is not None else "") if f1 is not None else None]
        log.info("epoch %d/%s done in %s: %s", trainer.current_epoch + 1, self.epochs or "?",
                 progress.duration(time.monotonic() - self.epoch_start), ", ".join(p for p in parts if p) or "no metrics")
        if self.metrics_file is not None and not trainer.sanity_checking:
            from mask_cls.io import write_json

            ckpt = trainer.checkpoint_callback
            write_json({**{k: v for k, v in m.items() if v is not None}, "epochs": trainer.current_epoch + 1,
                        "best_checkpoint": getattr(ckpt, "best_model_path", "") or "", "running": True},
                       self.metrics_file)


class EpochBar(TQDMProgressBar):
    """Lightning's terminal bar, its epochs counted as the log lines count them: ``Epoch 1/3``
    for the first of three (Lightning's own says ``Epoch 0``)."""

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

        if self._leave:  # Lightning's own steps, the description set once (no "Epoch 0" drawn first)
            self.train_progress_bar = self.init_train_tqdm()
        self.train_progress_bar.reset()
        self.train_progress_bar.total = convert_inf(self.total_train_batches)
        self.train_progress_bar.initial = 0
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch + 1}{total}")


def swa_checkpoint(trainer: pl.Trainer, module: pl.LightningModule, dm: pl.LightningDataModule,
                   callbacks: list, folder: Path) -> tuple[str, float] | None:
    """Under ``callbacks=swa``, once the fit has put the averaged weights (BatchNorm statistics
    recomputed) into ``module``: ``folder/swa.ckpt`` and its validation macro F1. None without SWA."""
    from lightning.pytorch.callbacks import StochasticWeightAveraging

    if not any(isinstance(c, StochasticWeightAveraging) for c in callbacks):
        return None
    if not averaging_finished(trainer, callbacks):
        log.warning("SWA: the fit stopped at epoch %d of %s, before its averaging finished (early stopping, "
                    "max_steps or max_time): the run keeps its best checkpoint, not an average",
                    trainer.current_epoch, trainer.max_epochs)
        return None
    path = folder / "swa.ckpt"
    trainer.save_checkpoint(path)  # every process calls it; rank 0 writes
    scores = trainer.validate(module, datamodule=dm, verbose=False)
    return str(path), float(scores[0]["val/f1"]) if scores else float("nan")


def averaging_finished(trainer: pl.Trainer, callbacks: list) -> bool:
    """Whether Lightning's SWA averaged at least one snapshot and put the average into the module:
    it does so only when the fit reaches its last epoch (after the BatchNorm pass where there is one)."""
    from lightning.pytorch.callbacks import StochasticWeightAveraging

    swa = next((c for c in callbacks if isinstance(c, StochasticWeightAveraging)), None)
    if swa is None or swa.n_averaged is None or int(swa.n_averaged) < 1 or swa._max_epochs == -1:
        return False
    return trainer.current_epoch - 1 >= swa.swa_end


def check_averaging(callbacks: list) -> None:
    """One weight averaging at a time: SWA and EMA both replace the weights the run keeps."""
    from lightning.pytorch.callbacks import StochasticWeightAveraging

    if any(isinstance(c, StochasticWeightAveraging) for c in callbacks) and \
            any(isinstance(c, EMAWeightAveraging) for c in callbacks):
        raise ConfigError("callbacks: SWA and EMA together; choose one weight averaging (callbacks=swa or callbacks=ema)")
