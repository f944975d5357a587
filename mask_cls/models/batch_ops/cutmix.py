"""Vertical half CutMix: the left ``c`` columns from one image, the rest from a partner
(optionally a partner of the oldest age group); ``lam = c / W`` and the loss is
``lam * L(y1) + (1 - lam) * L(y2)`` for any criterion."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mask_cls import labels as L
from mask_cls.models.batch_ops.base import BatchOp


def vertical_cutmix(x: torch.Tensor, y: torch.Tensor, ratio: Sequence[float] = (0.4, 0.6), pair_old: bool = False,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mixed images, partner index of each row, lam = share of columns from the first image).

    The partner's label (and sample weight) is read with the index: ``y[partner]``."""
    n, w = x.shape[0], x.shape[-1]
    partner = torch.randperm(n, generator=generator).to(x.device)
    if pair_old:
        old = torch.nonzero(L.target("age", y) == 2).flatten()
        if len(old):
            pick = torch.randint(len(old), (n,), generator=generator).to(x.device)
            partner = old[pick]
    u = float(torch.empty(1).uniform_(ratio[0], ratio[1], generator=generator))
    c = max(1, min(w - 1, round(w * u)))
    mixed = x.clone()
    mixed[..., c:] = x[partner][..., c:]
    return mixed, partner, c / w


class CutMix(BatchOp):
    key, order, mixes = "cutmix", 10, True  # after any op that only moves pixels

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        if float(torch.rand(1)) < self.cfg.get("p", 0.5):
            return vertical_cutmix(x, y, self.cfg.get("ratio", (0.4, 0.6)), self.cfg.get("pair_old", False))
        return x, None, 1.0
