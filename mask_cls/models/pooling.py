"""Global pooling of backbone feature maps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GeM(nn.Module):
    """Generalised mean pooling, ``(mean x^p)^(1/p)`` with a learnable p (3 = the usual start)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learnable)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(min=1.0)
        return F.adaptive_avg_pool2d(x.float().clamp(min=self.eps).pow(p), 1).pow(1.0 / p).flatten(1)
