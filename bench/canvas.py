"""The competition's situation from REALFACES: a copy of the dataset (same layout, same tables,
same file names) whose every image is its face photo pasted at a random box into a 384x512
portrait frame (bench/facecrop.py's ``frame_with``), so training on the whole frame can be
compared with training on face crops of it (``bench/recipes.py CANVAS --regime canvas``).

    python bench/canvas.py REALFACES CANVAS

The box of each image is drawn from a generator seeded by its relative path, so the copy is the
same whatever order or number of processes writes it; ``boxes_true.csv`` keeps the boxes.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser  # noqa: E402
from facecrop import frame_with  # noqa: E402

from mask_cls.progress import track  # noqa: E402

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def rng_for(rel: str) -> np.random.Generator:
    """A generator that depends on the image's relative path only."""
    return np.random.default_rng(int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "little"))


def build(root: Path, dest: Path) -> pd.DataFrame:
    """Write the framed copy of ``root`` into ``dest`` (which must not exist); the true boxes."""
    if dest.exists():
        raise SystemExit(f"{dest}: exists; a copy is never written over")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    rows = []
    for src in track(images, len(images), "framing", unit="images"):
        rel = str(src.relative_to(root))
        out = tmp / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        face = None if any(part.startswith(".") for part in Path(rel).parts) else cv2.imread(str(src))
        if face is None:  # hidden files and unreadable images stay as they are (the layout's checks see them)
            shutil.copy2(src, out)
            continue
        frame, box = frame_with(face, rng_for(rel))
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if out.suffix.lower() in {".jpg", ".jpeg"} else []
        cv2.imwrite(str(out), frame, params)
        rows.append((rel, *box))
    for table in root.glob("*/*.csv"):  # the tables (train/train.csv, eval/info.csv), not an answer key
        (tmp / table.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(table, tmp / table.relative_to(root))
    boxes = pd.DataFrame(rows, columns=["image", "x", "y", "w", "h"])
    boxes.to_csv(tmp / "boxes_true.csv", index=False)
    tmp.rename(dest)
    return boxes


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("root", type=Path)
    p.add_argument("dest", type=Path)
    args = p.parse_args()
    boxes = build(args.root, args.dest)
    print(f"{len(boxes)} images framed into {args.dest} (384x512); true boxes in {args.dest / 'boxes_true.csv'}")


if __name__ == "__main__":
    main()
