"""Datasets over image tables: decode with OpenCV, augment, return uint8 CHW tensors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from mask_cls.data.images import read_rgb
from mask_cls.data.transforms import to_chw_uint8
from mask_cls.errors import ConfigError, DataError, one_line

log = logging.getLogger(__name__)


def collate_skipping(batch: list):
    """``default_collate`` of the readable items; None when none was (the step is skipped).

    With ``data.on_bad_image=skip`` an unreadable image is dropped from its batch and counted,
    never replaced by another image (which would count that one twice in validation)."""
    kept = [b for b in batch if b is not None]
    return default_collate(kept) if kept else None



def _hw(size: Sequence[int] | None) -> tuple[int, int] | None:
    """(H, W) of a decode target, or None for full size."""
    return (int(size[0]), int(size[1])) if size else None

class ImageDataset(Dataset):
    """(image uint8 CHW, label) pairs; label -1 where unknown (eval images).

    With ``weights`` (per-image loss weights, e.g. for pseudo-label rows): (image, label, weight);
    with ``soft`` (a teacher's (N, 18) probabilities, ssl=distill): (image, label, weight, soft).
    """

    def __init__(self, paths: Sequence[str], labels: Sequence[int] | np.ndarray | None, transform: A.Compose,
                 cache=None, on_bad_image: str = "error", weights: Sequence[float] | None = None,
                 target_size: Sequence[int] | None = None, soft: np.ndarray | None = None):
        self.paths = list(paths)
        self.labels = np.asarray(labels if labels is not None else [-1] * len(self.paths), dtype=np.int64)
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float32)
        self.soft = None if soft is None else np.asarray(soft, dtype=np.float32)
        if self.soft is not None and self.weights is None:
            self.weights = np.ones(len(self.paths), dtype=np.float32)
        self.transform = transform
        # albumentations 2.x draws from its own generator, seeded from the OS unless told:
        # seed it from torch's (seed_everything) so that seeded runs repeat
        self.seed(int(torch.randint(0, 2**31 - 1, (1,))))
        # target (H, W): large JPEGs are decoded at a reduced scale, never above what is needed
        self.read = cache.get if cache is not None else partial(read_rgb, target=_hw(target_size))
        if on_bad_image not in ("error", "skip"):
            raise ConfigError(f"data.on_bad_image={on_bad_image!r}: choose error or skip")
        self.skip_bad = on_bad_image == "skip"
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.paths)

    def seed(self, seed: int) -> None:
        seed_transform(self.transform, seed)

    def item(self, img: np.ndarray, j: int):
        x = to_chw_uint8(self.transform(image=img)["image"])
        if self.weights is None:
            return x, int(self.labels[j])
        if self.soft is None:
            return x, int(self.labels[j]), float(self.weights[j])
        return x, int(self.labels[j]), float(self.weights[j]), torch.from_numpy(self.soft[j])

    def __getitem__(self, i: int):
        """The item, or None for an unreadable image under ``on_bad_image=skip`` (its batch
        drops it: ``collate_skipping``)."""
        try:
            return self.item(self.read(self.paths[i]), i)
        except DataError as e:
            if not self.skip_bad:
                raise
            self.skipped += 1
            log.warning("skipped %s (%d skipped in this process)", one_line(e), self.skipped)
            return None


class TwoViewDataset(ImageDataset):
    """Unlabeled images, each decoded once and augmented twice: {"weak": CHW, "strong": CHW}
    (UDA's two views; the strong one is drawn independently, not from the weak one)."""

    def __init__(self, paths: Sequence[str], weak: A.Compose, strong: A.Compose, cache=None,
                 on_bad_image: str = "error", target_size: Sequence[int] | None = None):
        self.strong = strong
        super().__init__(paths, None, weak, cache, on_bad_image, target_size=target_size)

    def seed(self, seed: int) -> None:
        seed_transform(self.transform, seed)
        seed_transform(self.strong, seed + 1)

    def item(self, img: np.ndarray, j: int) -> dict[str, torch.Tensor]:
        return {"weak": to_chw_uint8(self.transform(image=img)["image"]),
                "strong": to_chw_uint8(self.strong(image=img)["image"])}


def seed_transform(transform, seed: int) -> None:
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(seed)


def worker_init(_: int) -> None:
    """OpenCV's own threads fight the DataLoader's processes for the cores; and each worker
    needs its own augmentation stream (a copied generator would repeat across workers)."""
    cv2.setNumThreads(0)
    info = torch.utils.data.get_worker_info()
    if info is not None and hasattr(info.dataset, "seed"):
        info.dataset.seed(torch.initial_seed() % 2**31)
