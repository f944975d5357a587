"""Backbone + head as one nn.Module, built from the ``model`` and ``head`` configs."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from hydra.utils import instantiate
from torch import nn

from mask_cls.labels import NUM_CLASSES
from mask_cls.models.backbone import create_backbone, feature_dim


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Logits; ``target`` is for margin heads, which use it only while training."""
        return self.head(self.backbone(x), target)


def build_classifier(model_cfg: Mapping, head_cfg: Mapping, num_classes: int = NUM_CLASSES) -> Classifier:
    m = dict(model_cfg)
    backbone = create_backbone(
        m.pop("backbone"), pretrained=m.pop("pretrained", False), weights=m.pop("weights", None),
        drop_path_rate=m.pop("drop_path_rate", 0.0),
    )
    head = instantiate(head_cfg, in_features=feature_dim(backbone), num_classes=num_classes)
    return Classifier(backbone, head)
