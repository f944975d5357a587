"""How often the Predictor's BGR check (mask_cls/data/channel_order.py) is wrong on real faces:
photos as given (RGB, a warning would be false) and flipped to BGR (a warning is due), one photo
per call and in calls of five photos (judged by their median).

    python bench/channel_order.py REALFACES [--photos 600] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mask_cls.data.channel_order import MARGIN, blue_over_red  # noqa: E402
from mask_cls.data.images import read_rgb  # noqa: E402


def rates(margins: np.ndarray, group: int, rng: random.Random) -> tuple[float, float]:
    """(false warnings on RGB, missed BGR) over calls of ``group`` photos each."""
    idx = list(range(len(margins)))
    rng.shuffle(idx)
    calls = [margins[idx[i:i + group]] for i in range(0, len(idx) - group + 1, group)]
    false = np.mean([np.median(c) > MARGIN for c in calls])
    missed = np.mean([not np.median(-c) > MARGIN for c in calls])  # flipped: blue and red swap
    return float(false), float(missed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--photos", type=int, default=600)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    paths = sorted(p for p in (args.root / "train" / "images").rglob("*")
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png") and not p.name.startswith("."))
    rng = random.Random(0)
    paths = rng.sample(paths, min(len(paths), 30 if args.quick else args.photos))
    margins = np.array([blue_over_red(read_rgb(p)) for p in paths])
    print(f"{len(paths)} photos of {args.root.name}; warning when blue exceeds red by more than {MARGIN:.0f} grey levels")
    print("| photos per call | calls | RGB photos warned about (false) | BGR photos not warned about (missed) |")
    print("|---:|---:|---:|---:|")
    for group in (1, 5):
        false, missed = rates(margins, group, rng)
        print(f"| {group} | {len(paths) // group} | {false:.1%} | {missed:.1%} |")


if __name__ == "__main__":
    main()
