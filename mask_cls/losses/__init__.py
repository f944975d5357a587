"""Criteria (``loss=ce|smoothing|focal``), each with class weights from training counts.

A new loss is one file here (a ``base.Criterion`` subclass) and one ``conf/loss/<name>.yaml``
with ``_target_: mask_cls.losses.<file>.<Class>``: the registry finds it by that path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from mask_cls.losses.weights import class_weights


def build_criterion(loss_cfg: Mapping, counts: Sequence[int] | None, num_classes: int | None = None,
                    output: str = "class") -> nn.Module:
    """Build the configured loss (by a registered name, never an arbitrary target) with ``weight`` from ``class_weights`` mode and counts."""
    cfg = dict(loss_cfg)
    mode = cfg.pop("class_weights", "none")
    alpha = cfg.get("alpha")
    if num_classes is not None and isinstance(alpha, list | tuple) and len(alpha) != num_classes:
        from mask_cls.errors import ConfigError

        raise ConfigError(f"loss.alpha has {len(alpha)} values, but the {output!r} output has {num_classes} "
                          "classes: give one value per class of each output (or a scalar)")
    weight = class_weights(counts, mode) if counts is not None else None
    if mode not in (None, "none") and counts is None:
        raise ValueError("class weights need the training fold's class counts")
    from mask_cls.registry import losses

    return losses().build(cfg, weight=weight)
