"""Learning-rate schedule factories: ``sched=cosine|onecycle|plateau|none`` in the config.

Each takes the optimizer and the trainer (for the number of steps, known only at fit time)
and returns a Lightning lr-scheduler dict, or None.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, OneCycleLR, ReduceLROnPlateau

from mask_cls.registry import Registry, functions_of

#: the module's name before it was named for what it holds: checkpoints written then still load
_LEGACY = "mask_cls.optim"


def cosine(optimizer: Optimizer, trainer, warmup_epochs: float = 0.0, min_lr_ratio: float = 0.01) -> dict:
    """Per-step linear warm-up then cosine decay to ``min_lr_ratio`` of the base rate."""
    total = max(1, int(trainer.estimated_stepping_batches))
    warm = int(total * warmup_epochs / max(1, trainer.max_epochs or 1))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}


def onecycle(optimizer: Optimizer, trainer, pct_start: float = 0.3, div_factor: float = 25.0,
             final_div_factor: float = 1e4) -> dict:
    max_lr = [g["lr"] for g in optimizer.param_groups]
    sched = OneCycleLR(optimizer, max_lr=max_lr, total_steps=max(2, int(trainer.estimated_stepping_batches)),
                       pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor)
    return {"scheduler": sched, "interval": "step"}


def plateau(optimizer: Optimizer, trainer, factor: float = 0.5, patience: int = 2,
            monitor: str = "val/f1") -> dict:
    sched = ReduceLROnPlateau(optimizer, mode="max", factor=factor, patience=patience)
    return {"scheduler": sched, "interval": "epoch", "monitor": monitor}


def constant(optimizer: Optimizer, trainer) -> None:
    return None


def registry() -> Registry:
    """Every public function of this file (``mask_cls.lr_schedules.<name>``)."""
    known = {k: f for k, f in functions_of(__name__).items() if k != f"{__name__}.registry"}
    legacy = {k.replace(__name__, _LEGACY, 1): f for k, f in known.items()}
    return Registry("sched", known, extra=legacy.get)
