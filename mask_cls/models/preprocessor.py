"""What a batch needs on the device before the network sees it, owned by the model side.

uint8 images arrive from the DataLoader workers (a quarter of the bytes of floats); here they
become normalised floats, in NHWC when ``channels_last`` (faster convolutions on CPU and on
tensor-core GPUs). A batch is (images, labels[, sample weights]), one image tensor (a view),
or, under UDA, a mapping of those; labels and weights pass through untouched."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mask_cls.data.transforms import normalize


class Preprocessor(nn.Module):
    def __init__(self, mean: Sequence[float], std: Sequence[float], channels_last: bool = False):
        super().__init__()
        self.mean, self.std = list(mean), list(std)
        self.channels_last = bool(channels_last)
        # on the device with the module: no host-to-device copy (a sync) per batch; not saved
        self.register_buffer("mean_t", torch.tensor(self.mean), persistent=False)
        self.register_buffer("std_t", torch.tensor(self.std), persistent=False)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        x = normalize(x, self.mean_t, self.std_t)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def forward(self, batch):
        if batch is None:
            return None
        if isinstance(batch, Mapping):
            return {k: self(v) for k, v in batch.items()}
        if isinstance(batch, torch.Tensor):
            return self.images(batch)
        return (self.images(batch[0]), *batch[1:])
