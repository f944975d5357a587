"""The exported computation: uint8 RGB images in, the 18 probabilities out, so a caller needs no
project code. Normalisation, the run's TTA views and the models' weighted average (a cv run's
folds) are inside the graph; only the resize to the run's size is the caller's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from mask_cls.inference.tta import check_views, tta_probs


class ExportGraph(nn.Module):
    def __init__(self, modules: Sequence[nn.Module], weights: Sequence[float], tta: Sequence[str]):
        super().__init__()
        total = float(sum(weights))
        if not modules or len(modules) != len(weights) or total <= 0:
            raise ValueError(f"{len(modules)} models and weights {list(weights)}")
        self.models = nn.ModuleList(m.eval() for m in modules)
        self.weights = [float(w) / total for w in weights]
        self.views = check_views(tta)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images``: uint8 (N, 3, H, W) RGB at the run's size -> (N, 18) probabilities."""
        parts = []
        for w, m in zip(self.weights, self.models):
            model: Any = m  # a MaskClassifier
            x = model.preprocess(images)  # training's own device step (uint8 -> normalised float)
            parts.append(w * tta_probs(model.net.probs, x, self.views))
        out = parts[0]
        for part in parts[1:]:
            out = out + part
        return out
