"""timm backbones by name, pooled features out (the head lives in ``heads``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
from torch import nn

from mask_cls.errors import ConfigError


def create_backbone(name: str, pretrained: bool = False, weights: str | None = None,
                    drop_path_rate: float = 0.0, **kwargs) -> nn.Module:
    """A timm model without its classifier (``num_classes=0``), exposing ``num_features``.

    ``weights`` is a local file: a timm state dict (.pth/.bin/.safetensors), a mask_cls
    checkpoint (its backbone) or the efficientnet_pytorch naming; its classifier is dropped.
    """
    if not timm.is_model(name):
        from mask_cls.models.names import suggestion

        raise ConfigError(f"model.backbone={name!r} is not a timm model{suggestion(name, timm.list_models())}")
    extra = dict(kwargs)
    if drop_path_rate:
        extra["drop_path_rate"] = drop_path_rate
    if weights:  # a local file in any common format (models/weights.py); no download
        if not Path(weights).is_file():
            raise ConfigError(f"model.weights={weights}: file not found")
        model = timm.create_model(name, pretrained=False, num_classes=0, **extra)
        from mask_cls.models.weights import load_backbone_weights

        load_backbone_weights(model, weights)
        return model
    return timm.create_model(name, pretrained=pretrained, num_classes=0, **extra)


def feature_dim(backbone: nn.Module) -> int:
    """Width of the pooled output: timm models with a pre-logits layer (MobileNetV3's
    conv_head) report it as ``head_hidden_size``, the others as ``num_features``."""
    width: Any = getattr(backbone, "head_hidden_size", None) or backbone.num_features
    return int(width)
