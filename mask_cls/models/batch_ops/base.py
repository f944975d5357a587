"""The contract of a batch-level augmentation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch


class BatchOp:
    """Built from its entry of ``augment.batch`` (``key``); applied in ``order`` (lower first).
    ``__call__(x, y)`` returns ``(x, partner, lam)``: ``partner`` (the row each image's mixed-in
    part came from) and ``lam`` (the share of the image's own label) when the op mixes labels,
    else ``(x, None, 1.0)``. At most one op of a batch may mix labels (``mixes = True``)."""

    key: ClassVar[str]
    order: ClassVar[int] = 0
    mixes: ClassVar[bool] = False

    def __init__(self, cfg: Mapping[str, Any]):
        self.cfg = dict(cfg)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, float]:
        raise NotImplementedError
