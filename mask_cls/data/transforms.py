"""Albumentations pipelines built from config; the output is a uint8 (C, H, W) tensor.

Float conversion and normalisation happen on the device after the batch transfer
(``models/preprocessor.py``), so train and inference share exactly one preprocessing path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import numpy as np
import torch
from hydra.utils import instantiate

from mask_cls.data.images import resize_to
from mask_cls.errors import ConfigError


def check_size(image_size: Sequence[int]) -> tuple[int, int]:
    if len(image_size) != 2 or min(int(v) for v in image_size) < 8:
        raise ConfigError(f"data.image_size={list(image_size)}: expected [height, width], each >= 8")
    return int(image_size[0]), int(image_size[1])


class ContractResize(A.ImageOnlyTransform):
    """The resize of the input contract (``images.resize_to``: bilinear, area beyond a 2x shrink)
    as the first step of every pipeline."""

    def __init__(self, height: int, width: int, p: float = 1.0) -> None:
        super().__init__(p=p)
        self.height, self.width = int(height), int(width)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return resize_to(img, (self.height, self.width))

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("height", "width")


def build(image_size: Sequence[int], augs: Sequence | None = None) -> A.Compose:
    """Resize to (H, W), then the configured augmentations (Hydra ``_target_`` nodes or objects)."""
    h, w = check_size(image_size)
    steps = [ContractResize(height=h, width=w)]
    for node in augs or []:
        # plain lists for nested transforms: albumentations SomeOf indexes them with numpy ints
        steps.append(instantiate(node, _convert_="all") if not isinstance(node, A.BasicTransform | A.BaseCompose) else node)
    return A.Compose(steps)


def to_chw_uint8(image: np.ndarray) -> torch.Tensor:
    """HWC uint8 RGB -> CHW uint8 tensor (a view, no float copy in the worker)."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
