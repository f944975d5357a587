"""The contract every head keeps, written once.

A head maps pooled features (N, D) to a tuple of logits, one per name in ``outputs`` (names of
``labels.TARGETS``: ``class`` for the 18 classes, or ``mask``/``gender``/``age``); the loss of
output i is weighted by ``loss_weights[i]``. ``probs``/``log_probs`` turn the tuple into the
18-class distribution (predictions, TTA, pseudo-labels, UDA). ``uses_target``: the logits depend
on the label while training (a margin head), so the module asks for them per label (CutMix's
partner gets its own). ``class_counts`` (of the training fold) reach every head's constructor.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Head(nn.Module):
    outputs: tuple[str, ...] = ("class",)
    uses_target: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.loss_weights: tuple[float, ...] = (1.0,) * len(self.outputs)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        """(N, 18) probabilities; the default reads the one 18-class output."""
        return outs[0].float().softmax(1)

    def log_probs(self, outs: Sequence[torch.Tensor]) -> torch.Tensor:
        return outs[0].float().log_softmax(1)
