"""Classification heads on pooled backbone features."""

from __future__ import annotations

import torch
from torch import nn


class LinearHead(nn.Module):
    """Dropout + one linear layer: the plain 18-way classifier."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(self.drop(x))
