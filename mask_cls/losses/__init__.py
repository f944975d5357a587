"""Criteria (``loss=ce|smoothing|focal``), each with class weights from training counts.

A new loss is one file here (a ``base.Criterion`` subclass) and one ``conf/loss/<name>.yaml``
with ``_target_: mask_cls.losses.<file>.<Class>``: ``registry()`` finds it by scanning this
package. A loss checks its own arguments (``Criterion.check_args``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, cast

from torch import nn

from mask_cls.losses.weights import class_weights
from mask_cls.registry import Registry, scan

if TYPE_CHECKING:
    from mask_cls.losses.base import Criterion


def registry() -> Registry:
    """Every ``Criterion`` subclass of this package, by ``mask_cls.losses.<file>.<Class>``."""
    from mask_cls.losses.base import Criterion

    return Registry("loss", scan(__name__, Criterion))


def build_criterion(loss_cfg: Mapping, counts: Sequence[int] | None, num_classes: int | None = None,
                    output: str = "class") -> nn.Module:
    """Build the configured loss (by a registered name, never an arbitrary target) with ``weight`` from ``class_weights`` mode and counts."""
    cfg = dict(loss_cfg)
    mode = cfg.pop("class_weights", "none")
    losses = registry()
    cls, kwargs = losses.kwargs(cfg)
    if num_classes is not None:
        cast("type[Criterion]", cls).check_args(kwargs, num_classes, output)
    weight = class_weights(counts, mode) if counts is not None else None
    if mode not in (None, "none") and counts is None:
        raise ValueError("class weights need the training fold's class counts")
    return losses.build(cfg, weight=weight)
