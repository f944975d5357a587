"""Predict images with a module: the same device preprocessing as training, TTA views averaged."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from mask_cls.data import transforms
from mask_cls.data.datasets import ImageDataset, collate_skipping, worker_init
from mask_cls.inference.tta import VIEWS, check_views, tta_probs
from mask_cls.labels import NUM_CLASSES
from mask_cls.module import MaskClassifier


def pick_device(accelerator: str = "auto") -> torch.device:
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _batches(module: MaskClassifier, paths: Sequence[str], image_size: Sequence[int] | None, batch_size: int,
             num_workers: int, device: torch.device | None, progress: bool, on_bad_image: str,
             read: Callable[[str], np.ndarray] | None) -> Iterable[tuple[np.ndarray, torch.Tensor]]:
    """(row numbers, the batch after training's own device step) over ``paths``, in order."""
    size = image_size or module.config.image_size
    if size is None:
        raise ValueError("image size unknown: pass image_size")
    device = device or pick_device()
    module.to(device).eval()
    # each item carries its own row number as its label: skipped rows are known, never shifted
    ds = ImageDataset(paths, np.arange(len(paths)), transforms.build(size), on_bad_image=on_bad_image,
                      target_size=size)
    if read is not None:
        ds.read = read
    loader = DataLoader(ds, batch_size=batch_size, num_workers=num_workers, worker_init_fn=worker_init,
                        collate_fn=collate_skipping, pin_memory=device.type == "cuda")
    if progress:
        from mask_cls.progress import track

        batches: Iterable = track(loader, len(loader), f"predicting {len(paths)} images", "batches")
    else:
        batches = loader
    for batch in batches:
        if batch is not None:
            yield batch[1].numpy(), module.preprocess(batch[0].to(device, non_blocking=True))


@torch.inference_mode()
def predict_paths(module: MaskClassifier, paths: Sequence[str], tta: Sequence[str] = ("none",),
                  image_size: Sequence[int] | None = None, batch_size: int = 64, num_workers: int = 0,
                  device: torch.device | None = None, progress: bool = False,
                  on_bad_image: str = "error", read: Callable[[str], np.ndarray] | None = None) -> np.ndarray:
    """(N, 18) probabilities for ``paths`` in order, averaged over the TTA views; under
    ``on_bad_image=skip`` the row of an unreadable image is NaN (callers drop or count it).
    ``read``: how an entry of ``paths`` becomes an RGB uint8 array (default: the image reader)."""
    views = check_views(tta)
    out = np.full((len(paths), NUM_CLASSES), np.nan, np.float32)
    for rows, x in _batches(module, paths, image_size, batch_size, num_workers, device, progress, on_bad_image, read):
        out[rows] = tta_probs(module, x, views).float().cpu().numpy()
    return out


@torch.inference_mode()
def predict_logits(module: MaskClassifier, paths: Sequence[str], tta: Sequence[str] = ("none",),
                   image_size: Sequence[int] | None = None, batch_size: int = 64, num_workers: int = 0,
                   device: torch.device | None = None, on_bad_image: str = "error",
                   progress: bool = False) -> tuple[list[torch.Tensor], np.ndarray]:
    """Per head output, the (views, N', classes) logits of ``paths`` (what a temperature divides),
    and the rows they belong to (N' < N where ``on_bad_image=skip`` skipped unreadable images)."""
    views = check_views(tta)
    parts: list[list[torch.Tensor]] = []
    rows = []
    for r, x in _batches(module, paths, image_size, batch_size, num_workers, device, progress, on_bad_image, None):
        per_view = [module.net(VIEWS[v](x)) for v in views]  # (outputs) per view
        parts.append([torch.stack([o[k].float().cpu() for o in per_view]) for k in range(len(per_view[0]))])
        rows.append(r)
    if not parts:
        raise ValueError("no readable image to predict")
    return [torch.cat([p[k] for p in parts], dim=1) for k in range(len(parts[0]))], np.concatenate(rows)


def fill_unreadable(probs: np.ndarray, what: str = "images") -> np.ndarray:
    """Rows of skipped (unreadable) images, NaN from ``predict_paths``, as uniform
    probabilities so that a submission keeps every row; their number is logged."""
    bad = np.isnan(probs).any(1)
    if bad.any():
        import logging

        logging.getLogger("mask_cls").warning("%d unreadable %s skipped: predicted from a uniform distribution "
                                              "(class 0)", int(bad.sum()), what)
        probs = probs.copy()
        probs[bad] = 1.0 / probs.shape[1]
    return probs
