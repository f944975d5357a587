"""The reduction every criterion shares, so that sample weights and masks mean one thing.

A criterion gives a per-example loss ``l_i`` and a normaliser ``n_i`` (the class weight of
the target for weighted CE, 1 for a plain mean). The batch loss is

    sum_i s_i * k_i * l_i  /  sum_i s_i * k_i * n_i

with ``s`` the sample weights (pseudo-label rows count ``s_i`` times a labeled row) and ``k``
a keep mask (Training Signal Annealing drops examples the model already fits). The weights are
in the denominator too, as in torch's weighted cross-entropy: a row of weight 0 is the same as
no row. With neither, it is exactly torch's weighted mean.
"""

from __future__ import annotations

import torch
from torch import nn


class Criterion(nn.Module):
    weight: torch.Tensor | None  # a buffer: per-class weights, or None
    @classmethod
    def check_args(cls, kwargs: dict, num_classes: int, output: str) -> None:
        """Refuse arguments that do not fit the output this loss is built for (one config error)."""

    def per_example(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss_i, normaliser_i), each of shape (N,)."""
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        loss, norm = self.per_example(logits, target)
        if keep is not None:
            loss, norm = loss * keep, norm * keep
        if weight is not None:
            loss, norm = loss * weight, norm * weight
        # all examples dropped: 0 (with a graph), never 0/0
        return loss.sum() / norm.sum().clamp_min(1e-12)
