"""The LightningModule: a step of its objective (``ssl/objective.py``), epoch-level metrics, optimiser and schedule.

It is built from a ``ModuleConfig`` (``module_config.py``), saved in every checkpoint as a plain
dict, so a checkpoint alone rebuilds its model, and loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any, cast

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from mask_cls import labels as L
from mask_cls import lr_schedules, optimizers
from mask_cls.errors import ConfigError
from mask_cls.losses import build_criterion
from mask_cls.models.classifier import Classifier, build_classifier
from mask_cls.models.preprocessor import Labeled, Preprocessor
from mask_cls.module_config import ModuleConfig
from mask_cls.ssl.objective import objective_for

# Under run.py, Hydra's handlers on the root logger print every log line (screen and run.log);
# the console handler the ``lightning`` package adds for itself would print each line twice.
if logging.getLogger().handlers:
    logging.getLogger("lightning").handlers.clear()

# Lightning notes that the module's hook wins over the datamodule's: that is the design here.
warnings.filterwarnings("ignore", message=".*overridden `on_after_batch_transfer`.*")
# Validation figures are torchmetrics results, already reduced over every process by compute();
# Lightning cannot tell and asks for sync_dist=True on each (7 lines under DDP), which would
# only average equal numbers again.
warnings.filterwarnings("ignore", message=r".*It is recommended to use `self\.log\('val/.*sync_dist=True.*")

class MaskClassifier(pl.LightningModule):
    def __init__(self, config: ModuleConfig | Mapping[str, Any]):
        super().__init__()
        cfg = self.config = ModuleConfig.from_mapping(config)
        # in the checkpoint only: the loggers get the whole run config once (engine.py)
        self.save_hyperparameters({"config": cfg.as_dict()}, logger=False)
        counts = cfg.class_counts
        self.net: Classifier = build_classifier(cfg.model, cfg.head, counts)
        head = self.net.head
        self.criteria = nn.ModuleList(
            build_criterion(cfg.loss, L.target_counts(t, counts) if counts else None, L.TARGETS[t][0], t)
            for t in head.outputs
        )
        # NHWC is faster for convolutions on CPU (measured: 1.2x resnet10t, 1.6x MobileNetV3)
        self.channels_last = bool(cfg.model.get("channels_last", False))
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.objective = objective_for(cfg.ssl)  # what training_step minimises (ssl/objective.py)
        self.backbone_lr_mult = float(cfg.finetune.get("backbone_lr_mult", 1.0))
        self.freeze_epochs = int(cfg.finetune.get("freeze_epochs", 0))
        if self.backbone_lr_mult <= 0:
            raise ConfigError(f"finetune.backbone_lr_mult={self.backbone_lr_mult}: must be > 0 "
                              "(freeze with finetune.freeze_epochs)")
        self.total_steps = 1.0  # of this fit; set at its start, for the TSA and ramp schedules
        self.preprocess = Preprocessor(cfg.normalize["mean"], cfg.normalize["std"], self.channels_last, cfg.augment_batch)
        # nan_strategy="disable": the default checks every update for NaN with a host sync
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss = MeanMetric(nan_strategy="disable")
        # macro F1 over the whole epoch (never averaged over batches)
        self.val_f1 = MulticlassF1Score(num_classes=L.NUM_CLASSES, average="macro")
        self.val_acc = MulticlassAccuracy(num_classes=L.NUM_CLASSES, average="micro")
        self.val_task_f1 = nn.ModuleDict(
            {t: MulticlassF1Score(num_classes=k, average="macro") for t, k in L.SUBTASKS.items()}
        )
        self.val_f1_best = MaxMetric()
        self.val_f1_best.persistent(True)  # a resumed run keeps its best score
        engine = cfg.engine
        self.agc = engine.get("agc")
        if engine.get("compile"):
            # in place: parameter names (and so checkpoints) stay those of the uncompiled model
            self.net.compile(mode=engine.get("compile_mode"), backend=engine.get("compile_backend", "inductor"))

    # -- data on device -------------------------------------------------------------------
    def on_after_batch_transfer(self, batch, dataloader_idx: int = 0):
        """uint8 images from the workers -> normalised floats on the device, batch-augmented
        while training (``Preprocessor``)."""
        return self.preprocess(batch, augment=self._trainer is not None and self.trainer.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """18-class probabilities."""
        return self.net.probs(x)

    def loss(self, outs: tuple[torch.Tensor, ...], y: torch.Tensor, weight: torch.Tensor | None = None,
             keep: tuple[torch.Tensor | None, ...] | None = None) -> torch.Tensor:
        """Weighted sum over the head's outputs of the criterion on each output's labels;
        ``weight``: per-example loss weights (pseudo rows); ``keep``: per output, the TSA mask."""
        head = self.net.head
        keep = keep or (None,) * len(outs)
        parts = [lw * crit(o, L.target(t, y), weight, k)
                 for lw, crit, t, o, k in zip(head.loss_weights, self.criteria, head.outputs, outs, keep)]
        return torch.stack(parts).sum()

    def supervised_loss(self, outs, b: Labeled, keep=None, outs_partner=None) -> torch.Tensor:
        """The loss of a labeled batch, CutMix's two labels weighted by ``lam``; a margin head
        gives the partner term its own logits (the margin on the partner's class)."""
        loss = self.loss(outs, b.y, b.weight, keep)
        if b.partner is None:
            return loss
        w2 = b.weight[b.partner] if b.weight is not None else None
        partner_outs = outs if outs_partner is None else outs_partner
        return b.lam * loss + (1 - b.lam) * self.loss(partner_outs, b.y[b.partner], w2, keep)

    # -- steps ------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        """``batch``: what the objective takes (a ``Labeled``; under UDA, labeled + unlabeled
        views), from the Preprocessor: normalised and batch-augmented already."""
        if batch is None or (isinstance(batch, Mapping) and any(v is None for v in batch.values())):
            return None  # every image of the batch was unreadable and skipped: no step
        loss = self.objective(self, batch)
        self.train_loss(loss.detach())
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def progress(self) -> float:
        """Share of this fit's optimiser steps done: 0 at the first step, 1 at the last."""
        return min(1.0, self._trainer.global_step / self.total_steps) if self._trainer else 0.0

    def on_train_start(self) -> None:
        total = self.trainer.estimated_stepping_batches
        self.total_steps = float(max(1, total - 1)) if math.isfinite(total) else math.inf

    def validation_step(self, batch, batch_idx: int) -> None:
        if batch is None:  # all skipped as unreadable
            return
        x, y = batch.x, batch.y
        outs = self.net(x)
        self.val_loss(self.loss(outs, y))
        preds = self.net.head.probs(outs).argmax(dim=1)
        self.val_f1.update(preds, y)
        self.val_acc.update(preds, y)
        for t, metric in self.task_metrics().items():
            metric.update(L.target(t, preds), L.target(t, y))

    def task_metrics(self) -> dict[str, Metric]:
        """The per-task macro F1 metrics (mask, gender, age), by task."""
        return {t: cast(Metric, m) for t, m in self.val_task_f1.items()}

    def on_validation_epoch_end(self) -> None:
        f1 = self.val_f1.compute()
        logs = {"val/acc": self.val_acc.compute(), "val/loss": self.val_loss.compute(),
                **{f"val/f1_{t}": m.compute() for t, m in self.task_metrics().items()}}
        if not (self._trainer is not None and self.trainer.sanity_checking):
            # the sanity check's few batches never count; a resumed fit keeps the best score of
            # the run it continues (a persistent state, restored from the checkpoint)
            self.val_f1_best(f1)
            logs["val/f1_best"] = self.val_f1_best.compute()
        self.log_dict(logs, prog_bar=False, sync_dist=False)
        self.log("val/f1", f1, prog_bar=True)
        for m in (self.val_f1, self.val_acc, self.val_loss, *self.task_metrics().values()):
            m.reset()

    # -- optimisation -----------------------------------------------------------------------
    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Adaptive gradient clipping (AGC, as NFNets need) when ``engine.agc`` is set, else Lightning's."""
        if self.agc:
            from timm.utils import adaptive_clip_grad

            adaptive_clip_grad([p for p in self.parameters() if p.grad is not None], clip_factor=float(self.agc))
        else:
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def param_groups(self) -> list[dict]:
        """Backbone parameters at ``finetune.backbone_lr_mult`` times the learning rate, the
        rest (pooling, neck, head) at the learning rate itself."""
        backbone = list(self.net.backbone.parameters())
        ids = {id(p) for p in backbone}
        rest = [p for p in self.parameters() if id(p) not in ids]
        lr = float(self.config.optim.get("lr", 1e-3))
        return [{"params": backbone, "lr": lr * self.backbone_lr_mult}, {"params": rest, "lr": lr}]

    def on_train_epoch_start(self) -> None:
        """``finetune.freeze_epochs`` N: the backbone is frozen for the first N epochs, its
        BatchNorm layers in eval mode (running statistics kept), then trained."""
        frozen = self.current_epoch < self.freeze_epochs
        for p in self.net.backbone.parameters():
            p.requires_grad_(not frozen)
        self.net.backbone.train(self.training and not frozen)

    def configure_optimizers(self):
        optimizer = optimizers.registry().build(self.config.optim, self.param_groups())
        sched = lr_schedules.registry().build(self.config.sched, optimizer, self.trainer)
        if sched is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": sched}
