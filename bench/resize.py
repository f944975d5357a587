"""The input contract's resize: bilinear up to a 2x shrink, area beyond (``images.resize_to``).
Images per second of the whole pipeline's resize step for a photo shrunk 1.33x (bilinear, as
before), 4x and 8x (area now; bilinear before), against bilinear at the same shrink measured in
the same run, and how far each is from the exact block mean (aliasing: the mean absolute
difference in grey levels on a photo-like image with fine detail).

    python bench/resize.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, report, timed  # noqa: E402

from mask_cls.data.images import resize_to  # noqa: E402


def detailed(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo-like image: smooth shading plus fine texture (what aliasing turns into noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = 128 + 60 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    texture = 50 * np.sign(np.sin(xx * 1.7 + yy * 0.9))
    img = np.clip(smooth[..., None] + texture[..., None] + rng.normal(0, 8, (h, w, 3)), 0, 255)
    return img.astype(np.uint8)


def block_mean(img: np.ndarray, k: int) -> np.ndarray:
    h, w = img.shape[0] // k, img.shape[1] // k
    return img[: h * k, : w * k].reshape(h, k, w, k, 3).mean((1, 3))


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    target = (64, 48) if args.quick else (256, 192)
    n = 5 if args.quick else 50
    rows, errors = [], []
    for k_num, k_den in ((4, 3), (4, 1), (8, 1)):
        src = (target[0] * k_num // k_den, target[1] * k_num // k_den)
        img = detailed(*src)
        label = f"{src[0]}x{src[1]} -> {target[0]}x{target[1]}"

        def run(fn, img: np.ndarray = img) -> int:
            for _ in range(n):
                fn(img)
            return n

        contract, _ = timed(lambda: run(lambda x: resize_to(x, target)), args.repeats)
        linear, _ = timed(lambda: run(lambda x: cv2.resize(x, target[::-1], interpolation=cv2.INTER_LINEAR)),
                          args.repeats)
        rows += [(f"{label} bilinear (before)", linear), (f"{label} contract (now)", contract)]
        if k_den == 1:
            exact = block_mean(img, k_num)
            errors.append((label, float(np.abs(cv2.resize(img, target[::-1], interpolation=cv2.INTER_LINEAR) - exact)
                                        .mean()), float(np.abs(resize_to(img, target) - exact).mean())))
    report("resize: images per second (ratio against the first row: bilinear at a 1.33x shrink)", rows, "images/s",
           rows[0][0])
    print("\nmean |resized - exact block mean| (grey levels): bilinear before, contract now")
    for label, before, now in errors:
        print(f"  {label:<24}{before:8.2f}{now:8.2f}")


if __name__ == "__main__":
    main()
