"""Heads on pooled features. Each returns a tuple of logits, one per entry of ``outputs``
(names in ``labels.TARGETS``), and turns them into 18-class probabilities with ``probs``
(``log_probs`` for losses on the distribution, such as UDA's consistency)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mask_cls import labels as L
from mask_cls.losses.arcface import add_margin, class_margins


class LinearHead(nn.Module):
    """One linear layer to the 18 classes."""

    outputs = ("class",)
    uses_target = False  # the logits never depend on the label

    def __init__(self, in_features: int, class_counts: Sequence[int] | None = None):
        super().__init__()
        self.fc = nn.Linear(in_features, L.NUM_CLASSES)
        self.loss_weights = (1.0,)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        return (self.fc(x),)

    def probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        return outs[0].float().softmax(1)

    def log_probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        return outs[0].float().log_softmax(1)


class ArcFaceHead(nn.Module):
    """Cosine logits ``s*cos(theta)`` between the normalised embedding and normalised class
    centres; while training, the target's logit gets the angular margin (``losses.arcface``).

    ``subcenters`` k > 1: k centres per class, the class cosine is the max over them.
    ``m_min``: per-class margins from m_min (frequent) to m (rare classes).
    """

    outputs = ("class",)
    uses_target = True  # the target's logit carries the margin while training

    def __init__(self, in_features: int, class_counts: Sequence[int] | None = None, s: float = 30.0,
                 m: float = 0.5, easy_margin: bool = False, subcenters: int = 1, m_min: float | None = None):
        super().__init__()
        self.s, self.k, self.easy_margin = s, subcenters, easy_margin
        self.weight = nn.Parameter(torch.empty(L.NUM_CLASSES * subcenters, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.register_buffer("m", class_margins(class_counts, m, m_min))
        self.loss_weights = (1.0,)

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

    def probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        return outs[0].float().softmax(1)

    def log_probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        return outs[0].float().log_softmax(1)


class MultiTaskHead(nn.Module):
    """Three linear heads (mask 3, gender 2, age 3); the loss is their weighted sum and the
    18-class probability is the product of the three."""

    outputs = ("mask", "gender", "age")
    uses_target = False

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
