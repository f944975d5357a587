"""Backbone -> pooling -> neck -> dropout -> head, built from the ``model`` and ``head`` configs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mask_cls.errors import ConfigError
from mask_cls.models.backbone import create_backbone, feature_dim
from mask_cls.models.heads.base import Head
from mask_cls.models.neck import embedding_neck
from mask_cls.models.pooling import GeM


class Classifier(nn.Module):
    """``pool=None`` uses timm's own head path (average pooling, MobileNetV3's conv_head);
    a pooling module is applied to ``forward_features`` maps instead.

    ``dropout_samples`` n > 1 is multi-sample dropout: n dropout masks on the same features
    while training, logits averaged.
    """

    backbone: Any  # a timm model (forward_features, num_features)
    head: Head
    temperature: torch.Tensor

    def __init__(self, backbone: nn.Module, head: Head, pool: nn.Module | None = None,
                 neck: nn.Module | None = None, dropout: float = 0.0, dropout_samples: int = 1):
        super().__init__()
        self.backbone, self.pool, self.neck, self.head = backbone, pool, neck or nn.Identity(), head
        self.drop = nn.Dropout(dropout)
        self.dropout_samples = max(1, int(dropout_samples))
        # one temperature per head output (task=train's calibration, calibration.json); not in the
        # checkpoint: a run's calibration lives beside it and is applied where the run is loaded
        self.register_buffer("temperature", torch.ones(len(head.outputs)), persistent=False)
        self.calibrated = False

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x) if self.pool is None else self.pool(self.backbone.forward_features(x))
        return self.neck(f)

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """A tuple of logits (one per head output); ``target`` only matters to margin heads."""
        return self.head_outputs(self.features(x), target)

    def head_outputs(self, f: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        n = self.dropout_samples if self.training else 1
        if n == 1:
            return self.head(self.drop(f), target)
        samples = [self.head(self.drop(f), target) for _ in range(n)]
        return tuple(torch.stack(outs).mean(0) for outs in zip(*samples))

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """18-class probabilities (each output's logits divided by its temperature, once calibrated)."""
        outs = self(x)
        if self.calibrated:
            outs = tuple(o / t for o, t in zip(outs, self.temperature))
        return self.head.probs(outs)

    def set_temperatures(self, temperatures: Sequence[float]) -> None:
        """Calibrate: one temperature per head output (1 = the model as trained)."""
        if len(temperatures) != len(self.head.outputs) or not all(0 < float(t) < 1e3 for t in temperatures):
            raise ValueError(f"temperatures {list(temperatures)}: need {len(self.head.outputs)} positive values")
        self.temperature = torch.tensor([float(t) for t in temperatures], device=self.temperature.device)
        self.calibrated = any(float(t) != 1.0 for t in temperatures)


POOLS = {"avg": None, "gem": GeM}


def build_classifier(model_cfg: Mapping, head_cfg: Mapping, class_counts: Sequence[int] | None = None) -> Classifier:
    m = dict(model_cfg)
    backbone = create_backbone(m["backbone"], pretrained=m.get("pretrained", False),
                               weights=m.get("weights"), drop_path_rate=m.get("drop_path_rate", 0.0))
    pooling = m.get("pooling", "avg")
    if pooling not in POOLS:
        raise ConfigError(f"model.pooling={pooling!r}: choose one of {', '.join(POOLS)}")
    make_pool = POOLS[pooling]
    pool = make_pool() if make_pool is not None else None
    dim = feature_dim(backbone) if pool is None else int(getattr(backbone, "num_features"))  # noqa: B009
    neck = None
    if m.get("neck"):
        neck = embedding_neck(dim, int(m["neck"]))
        dim = int(m["neck"])
    from mask_cls.models.heads import registry as heads

    head = heads().build(head_cfg, in_features=dim, class_counts=class_counts)
    return Classifier(backbone, head, pool, neck, m.get("dropout", 0.0), m.get("dropout_samples", 1))
