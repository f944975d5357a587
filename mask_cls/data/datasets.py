"""Datasets over image tables: decode with OpenCV, augment, return uint8 CHW tensors."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from mask_cls.data.transforms import to_chw_uint8
from mask_cls.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def read_rgb(path: str) -> np.ndarray:
    """Decode any of jpg/jpeg/png, grayscale/RGBA/16-bit included, to 8-bit RGB."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"{path}: unreadable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class ImageDataset(Dataset):
    """(image uint8 CHW, label) pairs; label -1 where unknown (eval images)."""

    def __init__(self, paths: Sequence[str], labels: Sequence[int] | None, transform: A.Compose,
                 cache=None, on_bad_image: str = "error"):
        self.paths = list(paths)
        self.labels = np.asarray(labels if labels is not None else [-1] * len(self.paths), dtype=np.int64)
        self.transform = transform
        # albumentations 2.x draws from its own generator, seeded from the OS unless told:
        # seed it from torch's (seed_everything) so that seeded runs repeat
        seed_transform(transform, int(torch.randint(0, 2**31 - 1, (1,))))
        self.read = cache.get if cache is not None else read_rgb
        if on_bad_image not in ("error", "skip"):
            raise ConfigError(f"data.on_bad_image={on_bad_image!r}: choose error or skip")
        self.skip_bad = on_bad_image == "skip"
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        for k in range(len(self.paths) if self.skip_bad else 1):
            j = (i + k) % len(self.paths)
            try:
                img = self.transform(image=self.read(self.paths[j]))["image"]
                return to_chw_uint8(img), int(self.labels[j])
            except DataError:
                if not self.skip_bad:
                    raise
                # skip: the bad image is dropped and the next one takes its place
                self.skipped += 1
                log.warning("skipped unreadable image %s (%d skipped in this process)", self.paths[j], self.skipped)
        raise DataError(f"no readable image among {len(self.paths)} files")


def seed_transform(transform, seed: int) -> None:
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)


def worker_init(_: int) -> None:
    """OpenCV's own threads fight the DataLoader's processes for the cores; and each worker
    needs its own augmentation stream (a copied generator would repeat across workers)."""
    cv2.setNumThreads(0)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "transform"):
        seed_transform(info.dataset.transform, torch.initial_seed() % 2**31)
