"""What a batch needs on the device before the network sees it, owned by the model side.

uint8 images arrive from the DataLoader workers (a quarter of the bytes of floats); here they
become normalised floats, in NHWC when ``channels_last`` (faster convolutions on CPU and on
tensor-core GPUs), and, for training batches, get the batch augmentation (CutMix, grid
shuffle), so that the LightningModule's steps see ready batches and read as the algorithm.

A labeled batch (images, labels[, sample weights[, soft targets]]) becomes a ``Labeled``; one image tensor
(a view) becomes the normalised tensor; under UDA a mapping of those keeps its keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mask_cls.models.batch_augment import BatchAugment


def normalize(x: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) on any device -> float, (x/255 - mean) / std (mean and std as tensors
    already on ``x``'s device avoid a host-to-device copy per call)."""
    m = torch.as_tensor(mean, device=x.device, dtype=torch.float32).view(1, -1, 1, 1) * 255
    s = torch.as_tensor(std, device=x.device, dtype=torch.float32).view(1, -1, 1, 1) * 255
    return (x.float() - m) / s


@dataclass
class Labeled:
    """A labeled batch on the device. ``partner``: the row each image's right part came from
    (CutMix), None when no CutMix ran; ``lam``: the share of the image's own label."""

    x: torch.Tensor
    y: torch.Tensor
    weight: torch.Tensor | None = None
    partner: torch.Tensor | None = None
    lam: float = 1.0
    soft: torch.Tensor | None = None  # the teacher's (N, 18) probabilities (ssl=distill); label -1: unlabeled


class Preprocessor(nn.Module):
    mean_t: torch.Tensor  # buffers: the normalisation on the module's device
    std_t: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float], channels_last: bool = False,
                 batch_augment: Mapping | None = None):
        super().__init__()
        self.mean, self.std = list(mean), list(std)
        self.channels_last = bool(channels_last)
        self.batch_augment = BatchAugment(batch_augment)
        # on the device with the module: no host-to-device copy (a sync) per batch; not saved
        self.register_buffer("mean_t", torch.tensor(self.mean), persistent=False)
        self.register_buffer("std_t", torch.tensor(self.std), persistent=False)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        x = normalize(x, self.mean_t, self.std_t)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def labeled(self, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None,
                augment: bool = False, soft: torch.Tensor | None = None) -> Labeled:
        """Normalised images; with ``augment`` (training), the batch augmentation on them."""
        if not augment:
            return Labeled(x, y, weight, soft=soft)
        x, partner, lam = self.batch_augment(x, y)
        return Labeled(x, y, weight, partner, lam, soft)

    def forward(self, batch, augment: bool = False):
        if batch is None:
            return None
        if isinstance(batch, torch.Tensor):
            return self.images(batch)
        if isinstance(batch, Mapping):  # UDA: labeled batch + unlabeled views (never batch-augmented)
            return {k: self(v, augment and k == "labeled") for k, v in batch.items()}
        x, y, *rest = batch  # (images, labels[, weights[, soft targets]])
        return self.labeled(self.images(x), y, rest[0] if rest else None, augment, rest[1] if len(rest) > 1 else None)
