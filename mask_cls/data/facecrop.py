"""Face crop: the largest face a detector finds plus a margin, at a fixed aspect ratio; a centre
crop where none is found. Detectors (``task.detector``): ``yunet``, OpenCV's YuNet network
(``cv2.FaceDetectorYN``, its 230 KB ONNX file shipped in ``data/models`` under its MIT licence),
which finds masked faces; ``haar``, OpenCV's bundled Haar cascade, which often does not."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mask_cls.data.images import read_rgb, reduce_array
from mask_cls.io import atomic_write

YUNET = Path(__file__).parent / "models" / "face_detection_yunet_2023mar.onnx"
_CASCADE: cv2.CascadeClassifier | None = None
_YUNET: cv2.FaceDetectorYN | None = None
#: a face box (x, y, w, h) in the image's pixels and the detector's score
Face = tuple[tuple[int, int, int, int], float]


def cascade() -> cv2.CascadeClassifier:
    global _CASCADE
    if _CASCADE is None:
        folder = cv2.data.haarcascades  # type: ignore[attr-defined]  # cv2's stubs lack the data module
        _CASCADE = cv2.CascadeClassifier(os.path.join(folder, "haarcascade_frontalface_default.xml"))
    return _CASCADE


def haar_faces(img: np.ndarray, min_side: int) -> list[Face]:
    """Haar cascade detections (score: the cascade's level weight)."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    faces, _, weights = cascade().detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side),
                                                    outputRejectLevels=True)
    return [(_box(f), float(w)) for f, w in zip(faces, np.ravel(weights))]


def _box(values) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in values[:4])
    return x, y, w, h


def yunet_faces(img: np.ndarray, min_side: int, score: float = 0.6) -> list[Face]:
    """YuNet detections above ``score`` (one detector per process, resized to each image)."""
    global _YUNET
    h, w = img.shape[:2]
    if _YUNET is None:
        _YUNET = cv2.FaceDetectorYN.create(str(YUNET), "", (w, h), score, 0.3, 5000)
    _YUNET.setInputSize((w, h))
    _, faces = _YUNET.detect(img)
    found = []
    for f in faces if faces is not None else []:
        x, y, bw, bh = (int(round(v)) for v in f[:4])
        x0, y0 = max(0, x), max(0, y)
        box = (x0, y0, min(w, x + bw) - x0, min(h, y + bh) - y0)
        if min(box[2], box[3]) >= min_side:
            found.append((box, float(f[-1])))
    return found


DETECTORS = {"yunet": yunet_faces, "haar": haar_faces}


def largest(faces: list[Face]) -> Face | None:
    """The subject among the faces found: the largest. (Preferring faces the detector is surer of,
    or sharper ones, picked the subject no more often in frames with a blurred larger face behind:
    BENCHMARKS.md, "Face detection", ``bench/facecrop.py --background``.)"""
    return max(faces, key=lambda f: f[0][2] * f[0][3]) if faces else None


def face_box(img: np.ndarray, min_face: float = 0.15, detector: str = "yunet") -> Face | None:
    """The largest face (box, score) in a BGR image, or None; ``min_face``: the smallest face side
    as a share of the shorter image side."""
    if detector not in DETECTORS:
        from mask_cls.errors import ConfigError

        raise ConfigError(f"task.detector={detector!r}: choose {' or '.join(DETECTORS)}")
    return largest(DETECTORS[detector](img, int(min(img.shape[:2]) * min_face)))


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


def crop_file(src: str, dst: str, margin: float = 0.3, aspect: float = 0.75, min_face: float = 0.15,
              detector: str = "yunet") -> Face | None:
    """Crop ``src`` into ``dst`` (same format), written atomically; the face found, or None."""
    img = cv2.cvtColor(read_rgb(src), cv2.COLOR_RGB2BGR)  # header first, pixel limit, whole JPEGs only
    face = face_box(img, min_face, detector)
    x0, y0, x1, y1 = crop_box(img.shape[:2], face[0] if face else None, margin, aspect)
    ext = Path(dst).suffix.lower()
    ok, buf = cv2.imencode(ext if ext in (".jpg", ".jpeg", ".png") else ".png", img[y0:y1, x0:x1],
                           [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in (".jpg", ".jpeg") else [])
    if not ok:
        raise ValueError(f"{dst}: could not encode")
    atomic_write(dst, lambda tmp: tmp.write_bytes(buf.tobytes()))
    return face


def detect_all(paths: list[str], min_face: float = 0.15, detector: str = "yunet") -> dict[str, Face | None]:
    """The largest face of each image (full resolution), with a progress display."""
    from mask_cls.progress import track

    found = {}
    for p in track(paths, len(paths), f"finding faces ({detector})", "images"):
        found[p] = face_box(cv2.cvtColor(read_rgb(p), cv2.COLOR_RGB2BGR), min_face, detector)
    return found


class CropReader:
    """Reads an image as ``task=prepare`` would have cropped it (its face box grown by ``margin``
    at ``aspect``, or a centre crop), shrunk for ``target`` (H, W) as an array is (the input
    contract, ``images.reduce_array``): a picklable reader for the prediction workers."""

    def __init__(self, faces: dict[str, Face | None], margin: float = 0.3, aspect: float = 0.75,
                 target: tuple[int, int] | None = None):
        self.faces, self.margin, self.aspect, self.target = faces, margin, aspect, target

    def __call__(self, path: str) -> np.ndarray:
        rgb = read_rgb(path)
        face = self.faces.get(path)
        x0, y0, x1, y1 = crop_box(rgb.shape[:2], face[0] if face else None, self.margin, self.aspect)
        crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
        return reduce_array(crop, self.target) if self.target else crop
