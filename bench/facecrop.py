"""Which detector finds masked faces in a frame: each REALFACES photo (a 128x128 aligned face,
masked or not) pasted at a known box into a 384x512 portrait frame, then YuNet and the Haar
cascade asked for the largest face. A detection counts when its centre lies in the pasted box
and its area is 20%..200% of it (a box on the face, of plausible size). Rates per mask state,
and milliseconds per image, for both detectors in the same run.

    python bench/facecrop.py REALFACES [--persons 40] [--quick]
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

from mask_cls.data.facecrop import DETECTORS  # noqa: E402

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
                found = max(faces, key=lambda f: f[0][2] * f[0][3]) if faces else None
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


if __name__ == "__main__":
    main()
