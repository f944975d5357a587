"""Multi-class softmax focal loss: ``-alpha_y * w_y * (1 - p_y)^gamma * log p_y``, mean over the batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mask_cls.errors import ConfigError
from mask_cls.losses.base import Criterion


class FocalLoss(Criterion):
    alpha: torch.Tensor | None  # a buffer: a scalar or one value per class

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | None = None,
                 weight: torch.Tensor | None = None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)
        a = None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32)
        self.register_buffer("alpha", a)

    @classmethod
    def check_args(cls, kwargs: dict, num_classes: int, output: str) -> None:
        alpha = kwargs.get("alpha")
        if isinstance(alpha, list | tuple) and len(alpha) != num_classes:
            raise ConfigError(f"loss.alpha has {len(alpha)} values, but the {output!r} output has {num_classes} "
                              "classes: give one value per class of each output (or a scalar)")

    def per_example(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        loss = -((1 - logp.exp()) ** self.gamma) * logp
        if self.alpha is not None:  # a scalar, or one value per class
            loss = loss * (self.alpha if self.alpha.ndim == 0 else self.alpha[target])
        if self.weight is not None:
            loss = loss * self.weight[target]
        return loss, torch.ones_like(loss)  # a plain mean, as the published focal loss
