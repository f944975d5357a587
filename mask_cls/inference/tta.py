"""Test-time augmentation views on normalised (N, C, H, W) batches; probabilities are averaged."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from mask_cls.errors import ConfigError

VIEWS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "none": lambda x: x,
    "hflip": lambda x: x.flip(-1),  # the width axis
}


def check_views(views: Sequence[str]) -> list[str]:
    views = list(views) or ["none"]
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ConfigError(f"tta={views}: unknown view(s) {', '.join(unknown)} (known: {', '.join(VIEWS)})")
    return views


def tta_probs(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, views: Sequence[str]) -> torch.Tensor:
    """Mean over views of ``model(view(x))`` (``model`` returns probabilities)."""
    total = model(VIEWS[views[0]](x)).float()
    for v in views[1:]:
        total = total + model(VIEWS[v](x)).float()
    return total / len(views)
