"""Which detector finds masked faces in a frame: each REALFACES photo (a 128x128 aligned face,
masked or not) pasted at a known box into a 384x512 portrait frame, then YuNet and the Haar
cascade asked for the largest face (``facecrop.largest``, as the tool picks it). A detection counts when its centre lies in the pasted box
and its area is 20%..200% of it (a box on the face, of plausible size). Rates per mask state,
and milliseconds per image, for both detectors in the same run.

``--background``: each frame also holds another person's face behind, larger (1.2-1.5x) and
blurred (out of focus); per detector, how often each rule picks the subject: the largest face
(the tool's rule) against the largest of those the detector is at least 90% as sure of, and the
face whose sharpness (Laplacian variance) times the square root of its area is largest.

    python bench/facecrop.py REALFACES [--persons 40] [--background] [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

from mask_cls.data.facecrop import DETECTORS, largest  # noqa: E402

STATES = {"mask1": "mask", "mask3": "mask", "incorrect_mask": "incorrect", "normal": "no mask"}


def frame_with(face: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A 384x512 (W x H) frame: a soft background, shoulders, the face pasted at a random box."""
    h, w = 512, 384
    top, bottom = rng.integers(60, 200, 3), rng.integers(60, 200, 3)
    frame = np.linspace(top, bottom, h)[:, None, :].repeat(w, 1).astype(np.uint8)
    frame = np.ascontiguousarray(frame)
    side = int(rng.integers(140, 230))
    x, y = int(rng.integers(0, w - side)), int(rng.integers(20, h - side - 80))
    colour = tuple(int(v) for v in rng.integers(0, 255, 3))
    cv2.ellipse(frame, (x + side // 2, min(h - 1, y + side + 120)), (side, 140), 0, 180, 360, colour, -1)
    frame[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
    return frame, (x, y, side, side)


def with_background(frame: np.ndarray, box: tuple[int, int, int, int], other: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """``frame`` with ``other`` behind the subject: larger, out of focus, where it does not cover
    the subject's box (the side with more room)."""
    h, w = frame.shape[:2]
    x, y, side, _ = box
    big = min(int(side * rng.uniform(1.2, 1.5)), h - 40)
    left = x >= w - (x + side)  # more room on the left of the subject
    bx = 0 if left else w - big
    if left:
        big = min(big, max(x, 40))
    else:
        big = min(big, max(w - (x + side), 40))
        bx = w - big
    by = int(rng.integers(0, max(1, h - big - 60)))
    blurred = cv2.GaussianBlur(cv2.resize(other, (big, big), interpolation=cv2.INTER_LINEAR), (0, 0), big / 40)
    out = frame.copy()
    out[by:by + big, bx:bx + big] = blurred
    out[y:y + side, x:x + side] = frame[y:y + side, x:x + side]  # the subject stays in front
    return out


def plausible(found, box) -> bool:
    if found is None:
        return False
    (fx, fy, fw, fh), _ = found
    x, y, w, h = box
    cx, cy = fx + fw / 2, fy + fh / 2
    return x <= cx <= x + w and y <= cy <= y + h and 0.2 <= fw * fh / (w * h) <= 2.0


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("root", type=Path, nargs="?")
    p.add_argument("--persons", type=int, default=40)
    p.add_argument("--background", action="store_true", help="a larger blurred face behind each subject")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    if args.quick or args.root is None:  # drawn faces at 512x384, so the script runs anywhere
        from tempfile import TemporaryDirectory

        from mask_cls.data.synthetic import SynthConfig, generate

        tmp = TemporaryDirectory()
        root = Path(tmp.name) / "s"
        generate(root, SynthConfig(train_persons=3, eval_persons=0, image_size=(128, 128), seed=0, workers=1),
                 progress=False)
    else:
        root = args.root
    table = pd.read_csv(root / "train" / "train.csv", dtype=str).head(3 if args.quick else args.persons)
    if args.background:
        return background(root, list(table.path), rng)
    rows = []
    for person in table.path:
        for stem, state in STATES.items():
            src = next((f for f in (root / "train" / "images" / person).glob(f"{stem}.*") if not f.name.startswith(".")), None)
            face = cv2.imread(str(src)) if src else None
            if face is None:
                continue
            frame, box = frame_with(face, rng)
            for name, detect in DETECTORS.items():
                t = time.perf_counter()
                faces = detect(frame, int(min(frame.shape[:2]) * 0.15))
                ms = 1000 * (time.perf_counter() - t)
                found = largest(faces)  # the tool's rule (facecrop.face_box)
                rows.append({"detector": name, "state": state, "hit": plausible(found, box), "ms": ms})
    df = pd.DataFrame(rows)
    print(f"\nface detection in 384x512 frames, {len(df) // len(DETECTORS)} images of {len(table)} persons "
          f"from {root}; machine: {machine()}")
    summary = df.pivot_table(index="detector", columns="state", values="hit", aggfunc="mean")
    summary["all"] = df.groupby("detector").hit.mean()
    summary["ms per image"] = df.groupby("detector").ms.median()
    base = summary.loc["haar", "all"]
    summary["ratio (all)"] = summary["all"] / base if base else float("nan")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print("(ratio: detection rate over the Haar cascade's, 1.00x = the same)")


def _photo(root: Path, person: str, stem: str) -> np.ndarray | None:
    src = next((f for f in (root / "train" / "images" / person).glob(f"{stem}.*") if not f.name.startswith(".")), None)
    return cv2.imread(str(src)) if src else None


def background(root: Path, persons: list[str], rng: np.random.Generator) -> None:
    """Frames with a blurred larger face behind the subject: how often each rule picks the subject."""
    rows = []
    for i, person in enumerate(persons):
        other = _photo(root, persons[(i + 1) % len(persons)], "normal")
        for stem, state in STATES.items():
            face = _photo(root, person, stem)
            if face is None or other is None:
                continue
            frame, box = frame_with(face, rng)
            frame = with_background(frame, box, other, rng)
            for name, detect in DETECTORS.items():
                faces = detect(frame, int(min(frame.shape[:2]) * 0.15))
                rows.append({"detector": name, "state": state, "largest": plausible(largest(faces), box),
                             "surest": plausible(surest(faces), box),
                             "sharpest": plausible(sharpest(faces, frame), box), "faces": len(faces)})
    df = pd.DataFrame(rows)
    print(f"\nthe subject picked in 384x512 frames with a blurred larger face behind, {len(df) // len(DETECTORS)} "
          f"images of {len(persons)} persons from {root}; machine: {machine()}")
    summary = df.groupby("detector")[["largest", "surest", "sharpest"]].mean()
    summary["two faces found"] = df.assign(two=df.faces >= 2).groupby("detector").two.mean()
    for rule in ("surest", "sharpest"):
        summary[f"ratio ({rule})"] = summary[rule] / summary["largest"].where(summary["largest"] > 0)
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print("(share of frames whose subject each rule picks; ratio against the largest face, the tool's rule: "
          "1.00x = the same)")


def surest(faces: list) -> tuple | None:
    """The largest of the faces the detector is at least 90% as sure of as of its best one."""
    if not faces:
        return None
    best = max(f[1] for f in faces)
    return largest([f for f in faces if f[1] >= best - 0.1 * abs(best)])


def sharpest(faces: list, frame: np.ndarray) -> tuple | None:
    """The face whose sharpness (variance of the Laplacian inside its box) x sqrt(area) is largest."""
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)

    def merit(f) -> float:
        (x, y, w, h), _ = f
        crop = gray[max(0, y):y + h, max(0, x):x + w]
        return float(cv2.Laplacian(crop, cv2.CV_64F).var()) * (w * h) ** 0.5 if crop.size else 0.0

    return max(faces, key=merit) if faces else None


if __name__ == "__main__":
    main()
