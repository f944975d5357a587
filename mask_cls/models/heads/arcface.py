"""ArcFace: cosine logits, the additive angular margin on the true class (owned by the head).

target logit ``s*cos(theta_y + m)``, others ``s*cos(theta_j)``; past ``theta > pi - m`` the
logit becomes ``cos(theta) - m*sin(m)`` so that it keeps falling as theta grows
(or, with ``easy_margin``, the margin applies only where ``cos(theta) > 0``).
``m`` may be one value or one per class (larger for rare classes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mask_cls import labels as L
from mask_cls.models.heads.base import Head


def add_margin(cos: torch.Tensor, target: torch.Tensor, m: torch.Tensor, easy_margin: bool = False) -> torch.Tensor:
    """Cosines (N, C) -> cosines with the margin on each row's target column (unscaled)."""
    cos_y = cos.gather(1, target[:, None]).squeeze(1).clamp(-1 + 1e-7, 1 - 1e-7)
    m_y = m[target] if m.ndim else m.expand_as(cos_y)
    sin_y = torch.sqrt(1 - cos_y**2)
    phi = cos_y * torch.cos(m_y) - sin_y * torch.sin(m_y)  # cos(theta + m)
    if easy_margin:
        phi = torch.where(cos_y > 0, phi, cos_y)
    else:
        phi = torch.where(cos_y > torch.cos(math.pi - m_y), phi, cos_y - m_y * torch.sin(m_y))
    return cos.scatter(1, target[:, None], phi[:, None].to(cos.dtype))


def class_margins(counts: Sequence[float] | None, m: float, m_min: float | None) -> torch.Tensor:
    """One margin, or per-class margins from ``m_min`` (most frequent) to ``m`` (rarest),
    growing as ``count^-1/4`` (the dynamic margins of landmark-retrieval solutions)."""
    if counts is None or m_min is None:
        return torch.tensor(float(m))
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0) ** -0.25
    span = n.max() - n.min()
    t = (n - n.min()) / span if span > 0 else np.ones_like(n)
    return torch.tensor(m_min + (m - m_min) * t, dtype=torch.float32)


class ArcFaceHead(Head):
    """Cosine logits ``s*cos(theta)`` between the normalised embedding and normalised class
    centres; while training, the target's logit gets the angular margin (``add_margin`` above).

    ``subcenters`` k > 1: k centres per class, the class cosine is the max over them.
    ``m_min``: per-class margins from m_min (frequent) to m (rare classes).
    """

    uses_target = True  # the target's logit carries the margin while training
    m: torch.Tensor  # a buffer: the additive angular margin of each class

    def __init__(self, in_features: int, class_counts: Sequence[int] | None = None, s: float = 30.0,
                 m: float = 0.5, easy_margin: bool = False, subcenters: int = 1, m_min: float | None = None):
        super().__init__()
        self.s, self.k, self.easy_margin = s, subcenters, easy_margin
        self.weight = nn.Parameter(torch.empty(L.NUM_CLASSES * subcenters, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.register_buffer("m", class_margins(class_counts, m, m_min))

    def cosine(self, x: torch.Tensor) -> torch.Tensor:
        cos = F.linear(F.normalize(x.float()), F.normalize(self.weight.float()))
        if self.k > 1:
            cos = cos.view(x.shape[0], L.NUM_CLASSES, self.k).amax(-1)
        return cos

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        cos = self.cosine(x)
        if self.training and target is not None:
            cos = add_margin(cos, target, self.m, self.easy_margin)
        return (self.s * cos,)
