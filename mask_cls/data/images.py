"""The one image reader: header first, a pixel limit, reduced-size JPEG decoding, and the same
verdict for training, prediction, reports and the data doctor.

A 30000 x 30000 PNG is under 1 MB on disk and 2.7 GB decoded: the header is read before any
pixel, and an image above ``data.max_image_pixels`` (default 50 million, a 48 MP phone photo
fits) is refused with one line naming the file. A truncated JPEG, which OpenCV would decode
grey-filled with only a libjpeg warning, is refused as the doctor refuses it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np

from mask_cls.data.pixel_limit import max_pixels
from mask_cls.errors import DataError

log = logging.getLogger("mask_cls")
#: the image files every reader takes
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}


def is_hidden(name: str) -> bool:
    """Junk of the real data: AppleDouble ``._x``, ``.DS_Store``, ``.ipynb_checkpoints``."""
    return name.startswith(".")

_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


def header(path: str | Path) -> tuple[int, int, str, str]:
    """(width, height, format, mode) from the header alone, the pixel limit checked."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{shown(path)}: empty file")
        Image.MAX_IMAGE_PIXELS = None  # our own limit below names the file; PIL's does not
        with Image.open(path) as im:
            (w, h), fmt, mode = im.size, im.format or "", im.mode
    except UnidentifiedImageError:
        raise DataError(f"{shown(path)}: not an image") from None
    except OSError as e:
        raise DataError(f"{shown(path)}: unreadable image ({type(e).__name__}: {str(e)[:80]})") from None
    limit = max_pixels()
    if w * h > limit:
        raise DataError(f"{shown(path)}: {w}x{h} image ({w * h / 1e6:.0f} MP) is above the limit of {limit / 1e6:.0f} MP "
                        "(raise data.max_image_pixels if it is real)")
    return w, h, fmt, mode


def _jpeg_complete(data: bytes) -> bool:
    """A whole JPEG ends with the EOI marker (FF D9), possibly followed by padding."""
    tail = data[-4096:].rstrip(b"\0\r\n ")
    return tail.endswith(b"\xff\xd9") or b"\xff\xd9" in tail[-64:]


def shown(path: str | Path) -> str:
    """A file name fit for a message or a CSV: bytes that are not UTF-8 written as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def utf8_name(path: str | Path) -> bool:
    """Whether a path (as the OS gave it) is valid UTF-8, so a CSV or a log can hold it as it is."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def reduction(size: tuple[int, int], target: tuple[int, int] | None) -> int:
    """The largest JPEG decoding scale 1/k (k in 1, 2, 4, 8) that still gives >= ``target`` (H, W)."""
    if not target:
        return 1
    w, h = size
    k = 1
    while k < 8 and w // (2 * k) >= target[1] and h // (2 * k) >= target[0]:
        k *= 2
    return k


#: how every reader turns a photo into the model's input, written into ``export.json`` for those
#: who feed ``model.onnx`` themselves (the same calls give the same numbers)
INPUT_CONTRACT = {
    "decode": "8-bit RGB (grayscale, RGBA and 16-bit converted); a JPEG is decoded by OpenCV at the largest of "
              "1/2, 1/4, 1/8 scale whose sides are still >= (H, W) (cv2.imread(path, cv2.IMREAD_REDUCED_COLOR_k)), "
              "else at full size; other formats at full size",
    "resize": "cv2.resize(rgb, (W, H), interpolation=cv2.INTER_LINEAR), or cv2.INTER_AREA where a side shrinks by "
              "more than 2x (bilinear would alias): the whole photo, aspect not kept",
    "arrays": "an RGB uint8 array (H0, W0, 3) given to the Predictor is first shrunk by the same k (cv2.INTER_AREA), "
              "as its JPEG would have been decoded",
    "layout": "uint8 N x 3 x H x W, RGB; normalisation is inside the model",
}


#: a side shrunk by more than this (after the reduced JPEG decode) is resized by area: bilinear
#: reads 2 x 2 pixels per output pixel, so a larger shrink skips pixels and aliases
AREA_BEYOND = 2.0


def resize_to(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``rgb`` at (H, W) = ``size`` by the input contract's rule: bilinear, or area where a side
    shrinks by more than ``AREA_BEYOND``. Training, prediction, the cache and the Predictor all
    resize here."""
    h, w = int(size[0]), int(size[1])
    src_h, src_w = rgb.shape[:2]
    if (src_h, src_w) == (h, w):
        return rgb
    area = src_h > AREA_BEYOND * h or src_w > AREA_BEYOND * w
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)


def reduce_array(rgb: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """An RGB array shrunk by the factor its JPEG would have been decoded at (``reduction``), with
    area interpolation: a photo passed as an array meets the model as its file does."""
    h, w = rgb.shape[:2]
    k = reduction((w, h), target)
    if k == 1:
        return rgb
    return cv2.resize(rgb, (-(-w // k), -(-h // k)), interpolation=cv2.INTER_AREA)


def read_rgb(path: str | Path, target: tuple[int, int] | None = None) -> np.ndarray:
    """8-bit RGB (H, W, 3) of any jpg/jpeg/png (grayscale, RGBA, 16-bit converted); with
    ``target`` (H, W), a JPEG is decoded at the smallest 1/2, 1/4 or 1/8 scale still at least
    that large. Every problem is a DataError naming the file."""
    path = Path(path)
    w, h, fmt, _ = header(path)
    try:  # Python opens the file (any bytes in its name), OpenCV decodes memory
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{shown(path)}: unreadable image ({type(e).__name__})") from None
    if fmt == "JPEG" and not _jpeg_complete(data):
        raise DataError(f"{shown(path)}: truncated image")  # no JPEG end marker
    k = reduction((w, h), target) if fmt == "JPEG" else 1
    img = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED[k])
    if img is None:
        raise DataError(f"{shown(path)}: unreadable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def check_image_header(path: Path, on_bad_image: str = "error") -> bool:
    """Cheap readability check (header only, the pixel limit included): catches empty, text,
    foreign and oversized files early. False (a counted warning) for a bad image under
    ``on_bad_image=skip``; the error otherwise."""
    try:
        header(path)
    except DataError as e:
        if on_bad_image != "skip":
            raise
        log.warning("skipped %s", e)
        return False
    return True
