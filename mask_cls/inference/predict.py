"""Predict images with a module: the same device preprocessing as training, TTA views averaged."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from mask_cls.data import transforms
from mask_cls.data.datasets import ImageDataset, worker_init
from mask_cls.inference.tta import check_views, tta_probs
from mask_cls.module import MaskClassifier


def pick_device(accelerator: str = "auto") -> torch.device:
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


@torch.inference_mode()
def predict_paths(module: MaskClassifier, paths: Sequence[str], tta: Sequence[str] = ("none",),
                  image_size: Sequence[int] | None = None, batch_size: int = 64, num_workers: int = 0,
                  device: torch.device | None = None, progress: bool = False) -> np.ndarray:
    """(N, 18) probabilities for ``paths`` in order, averaged over the TTA views."""
    views = check_views(tta)
    size = image_size or module.hparams.config.get("image_size")
    if size is None:
        raise ValueError("image size unknown: pass image_size")
    device = device or pick_device()
    module = module.to(device).eval()
    loader = DataLoader(ImageDataset(paths, None, transforms.build(size)), batch_size=batch_size,
                        num_workers=num_workers, worker_init_fn=worker_init,
                        pin_memory=device.type == "cuda")
    if progress:
        from rich.progress import track

        loader = track(loader, description="predicting", total=len(loader))
    out = []
    for batch in loader:
        x, _ = module.on_after_batch_transfer((batch[0].to(device, non_blocking=True), None), 0)
        out.append(tta_probs(module, x, views).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 18), np.float32)
