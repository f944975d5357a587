"""Cross-entropy with label smoothing and class weights, written out (torch's convention).

loss_i = (1 - eps) * w_{y_i} * (-log p_{y_i}) + eps/C * sum_c w_c * (-log p_c),
averaged with the weights of the targets as the denominator, like ``F.cross_entropy``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mask_cls.losses.base import Criterion


class SmoothingCrossEntropy(Criterion):
    def __init__(self, epsilon: float = 0.1, weight: torch.Tensor | None = None):
        super().__init__()
        if not 0 <= epsilon < 1:
            raise ValueError(f"loss.epsilon={epsilon}: must be in [0, 1)")
        self.epsilon = epsilon
        self.register_buffer("weight", weight if weight is not None else None)

    def per_example(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp = F.log_softmax(logits.float(), dim=1)
        c = logits.shape[1]
        w = self.weight if self.weight is not None else logp.new_ones(c)
        nll = -logp.gather(1, target[:, None]).squeeze(1) * w[target]
        smooth = -(logp * w).sum(1) / c
        return (1 - self.epsilon) * nll + self.epsilon * smooth, w[target]
