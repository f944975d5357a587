"""Decoded, resized uint8 images on disk, so later epochs and runs skip JPEG decoding.

One ``.npy`` per (image path, file size, modification time, target size): a changed file gets
a new key and is decoded again; an entry that fails to load or has the wrong shape is
rebuilt. Entries are written to a temp file and renamed, so parallel workers never see half
an entry.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mask_cls.data.images import read_rgb, resize_to
from mask_cls.io import atomic_write


class ImageCache:
    def __init__(self, root: str | Path, image_size: Sequence[int]):
        self.h, self.w = int(image_size[0]), int(image_size[1])
        self.dir = Path(root) / f"{self.h}x{self.w}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def key(self, path: str) -> Path:
        st = os.stat(path)
        raw = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{self.h}x{self.w}"
        return self.dir / f"{hashlib.sha1(raw.encode()).hexdigest()}.npy"

    def get(self, path: str) -> np.ndarray:
        """RGB uint8 (H, W, 3) resized to the cache's size."""
        entry = self.key(path)
        if entry.is_file():
            try:
                img = np.load(entry, allow_pickle=False)
                if img.shape == (self.h, self.w, 3) and img.dtype == np.uint8:
                    self.hits += 1
                    return img
            except (ValueError, OSError, EOFError):
                pass  # corrupt entry: rebuild below
        self.misses += 1
        img = resize_to(read_rgb(path, (self.h, self.w)), (self.h, self.w))
        try:
            atomic_write(entry, lambda tmp: _save(tmp, img))
        except OSError:
            pass  # a cache that cannot be written only costs speed
        return img


def _save(path: Path, img: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a path
        np.save(f, img, allow_pickle=False)
