"""Three heads on one backbone: mask, gender, age."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mask_cls import labels as L
from mask_cls.models.heads.base import Head


class MultiTaskHead(Head):
    """Three linear heads (mask 3, gender 2, age 3); the loss is their weighted sum and the
    18-class probability is the product of the three."""

    outputs = ("mask", "gender", "age")

    def __init__(self, in_features: int, class_counts: Sequence[int] | None = None,
                 task_weights: Sequence[float] = (1.0, 1.0, 1.0)):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_features, L.TARGETS[t][0]) for t in self.outputs)
        self.loss_weights = tuple(float(w) for w in task_weights)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        return tuple(h(x) for h in self.heads)

    def probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        return L.joint_probs(*(o.float().softmax(1) for o in outs))

    def log_probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        return L.joint_log_probs(*(o.float().log_softmax(1) for o in outs))
