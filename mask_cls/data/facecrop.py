"""Face crop with OpenCV's bundled Haar cascade: the largest face plus a margin, at a fixed
aspect ratio; a centre crop where no face is found."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mask_cls.data.images import read_rgb
from mask_cls.io import atomic_write

_CASCADE: cv2.CascadeClassifier | None = None


def cascade() -> cv2.CascadeClassifier:
    global _CASCADE
    if _CASCADE is None:
        _CASCADE = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml"))
    return _CASCADE


def face_box(img: np.ndarray, min_face: float = 0.15) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the largest face, or None."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    side = int(min(gray.shape) * min_face)
    faces = cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(side, side))
    if len(faces) == 0:
        return None
    return tuple(int(v) for v in max(faces, key=lambda f: f[2] * f[3]))


def crop_box(shape: tuple[int, int], box: tuple[int, int, int, int] | None, margin: float, aspect: float,
             centre_share: float = 0.8) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) inside the image: the face box grown by ``margin`` (or a centre crop
    of ``centre_share`` of the height), widened or heightened to ``aspect`` = W / H."""
    h_img, w_img = shape
    if box is None:
        ch = h_img * centre_share
        cx, cy = w_img / 2, h_img / 2
    else:
        x, y, w, h = box
        ch = max(h, w / aspect) * (1 + 2 * margin)
        cx, cy = x + w / 2, y + h / 2
    cw = ch * aspect
    cw, ch = min(cw, w_img), min(ch, h_img)
    x0 = int(round(min(max(cx - cw / 2, 0), w_img - cw)))
    y0 = int(round(min(max(cy - ch / 2, 0), h_img - ch)))
    return x0, y0, x0 + int(round(cw)), y0 + int(round(ch))


def crop_file(src: str, dst: str, margin: float = 0.3, aspect: float = 0.75, min_face: float = 0.15) -> bool:
    """Crop ``src`` into ``dst`` (same format), written atomically; True when a face was found."""
    img = cv2.cvtColor(read_rgb(src), cv2.COLOR_RGB2BGR)  # header first, pixel limit, whole JPEGs only
    box = face_box(img, min_face)
    x0, y0, x1, y1 = crop_box(img.shape[:2], box, margin, aspect)
    ext = Path(dst).suffix.lower()
    ok, buf = cv2.imencode(ext if ext in (".jpg", ".jpeg", ".png") else ".png", img[y0:y1, x0:x1],
                           [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else [])
    if not ok:
        raise ValueError(f"{dst}: could not encode")
    atomic_write(dst, lambda tmp: tmp.write_bytes(buf.tobytes()))
    return box is not None
