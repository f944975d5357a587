"""Plain cross-entropy with optional class weights (torch's weighted mean)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mask_cls.losses.base import Criterion


class CrossEntropy(Criterion):
    def __init__(self, weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("weight", weight if weight is not None else None)

    def per_example(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        nll = F.cross_entropy(logits.float(), target, reduction="none")
        w = self.weight[target] if self.weight is not None else torch.ones_like(nll)
        return w * nll, w
