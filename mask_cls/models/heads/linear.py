"""One linear layer to the 18 classes."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mask_cls import labels as L
from mask_cls.models.heads.base import Head


class LinearHead(Head):
    """One linear layer to the 18 classes."""

    def __init__(self, in_features: int, class_counts: Sequence[int] | None = None):
        super().__init__()
        self.fc = nn.Linear(in_features, L.NUM_CLASSES)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        return (self.fc(x),)
