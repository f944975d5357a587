"""``augment.batch`` -> the batch-level augmentations of ``models/batch_ops`` (one file each,
found by their ``key``), applied in their ``order`` on the device while training."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from mask_cls.errors import ConfigError
from mask_cls.models.batch_ops.base import BatchOp


def known() -> dict[str, type[BatchOp]]:
    """Every batch op of the package, by its config key."""
    from mask_cls.registry import scan

    return {cls.key: cls for cls in scan("mask_cls.models.batch_ops", BatchOp).values()}


class BatchAugment:
    """``augment.batch`` config -> a callable on (x, y) returning (x, partner, lam); partner
    (the row each image's mixed-in part came from) is None unless a mixing op ran."""

    def __init__(self, cfg: Mapping | None):
        ops = known()
        entries = {k: v for k, v in dict(cfg or {}).items() if v}  # an empty entry turns its op off
        unknown = sorted(set(entries) - set(ops))
        if unknown:
            raise ConfigError(f"augment.batch.{unknown[0]}: not a batch augmentation (known: {', '.join(sorted(ops))})")
        self.ops = sorted((ops[k](dict(v)) for k, v in entries.items()), key=lambda op: op.order)
        if sum(op.mixes for op in self.ops) > 1:
            raise ConfigError("augment.batch: at most one operation may mix labels")

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        partner, lam = None, 1.0
        for op in self.ops:
            x, mixed, op_lam = op(x, y)
            if mixed is not None:
                partner, lam = mixed, op_lam
        return x, partner, lam
