"""Criteria (``loss=ce|smoothing|focal``), each with class weights from training counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hydra.utils import instantiate
from torch import nn

from mask_cls.losses.weights import class_weights


def build_criterion(loss_cfg: Mapping, counts: Sequence[int] | None) -> nn.Module:
    """Instantiate the configured loss with ``weight`` from ``class_weights`` mode and counts."""
    cfg = dict(loss_cfg)
    mode = cfg.pop("class_weights", "none")
    weight = class_weights(counts, mode) if counts is not None else None
    if mode not in (None, "none") and counts is None:
        raise ValueError("class weights need the training fold's class counts")
    return instantiate(cfg, weight=weight)
