"""The data doctor behind ``task=check``: the checks every layout shares (an image fully decoded, a
table read by the readers' rules, each problem a finding); a layout's own walk is in its module.

Each finding is (severity, file, message): ``error`` makes the data unusable, ``warning`` is
accepted (and counted) but worth knowing. Images are fully decoded, so truncated files show.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from mask_cls.data.csv_reader import read_table
from mask_cls.data.images import header, read_rgb
from mask_cls.data.report import Report
from mask_cls.errors import DataError


def _png_bit_depth(path: Path) -> int:
    with open(path, "rb") as f:
        header = f.read(26)
    return header[24] if len(header) > 24 else 8


def check_image(path: Path, report: Report) -> None:
    """Full decode: empty, non-image, truncated; grayscale / RGBA / 16-bit counted as converted."""
    try:
        w, h, fmt, mode = header(path)  # the pixel limit before any decoding
        read_rgb(path)  # the training reader's own verdict: train and check agree on every image
    except DataError as e:
        report.error(path, str(e).removeprefix(f"{path}: "))
        return
    report.sizes[(w, h)] += 1
    if fmt == "PNG" and _png_bit_depth(path) == 16:
        mode = "I;16"  # PIL shows 16-bit colour PNGs as 8-bit RGB
    report.counts["images"] += 1
    converted = {"L": "grayscale", "LA": "grayscale", "RGBA": "RGBA", "P": "palette", "I;16": "16-bit",
                 "I;16B": "16-bit", "I": "16-bit", "CMYK": "CMYK"}
    if mode in converted:
        report.counts[f"converted_{converted[mode]}"] += 1


def csv_or_finding(path: Path, columns: tuple[str, ...], report: Report) -> pd.DataFrame | None:
    """The table by the readers' own CSV rules, or None with the problem as a finding."""
    try:  # the training reader's own CSV rules (index = line number)
        df = read_table(path, columns)
    except DataError as e:
        report.error(path, str(e).removeprefix(f"{path}: "))
        return None
    if df.empty:
        report.error(path, "no rows")
        return None
    return df




def check_copies_across(train_images: list[str], eval_images: list[str], report: Report,
                        progress: Callable[[Iterable, int], Iterable]) -> None:
    """Eval images that show the same picture as a training image (a copy, re-saved or with bytes
    added: compared by decoded pixels): a score on them is not a score on unseen photos."""
    from mask_cls.data.pseudo import content_key

    if not train_images or not eval_images:
        return
    keys: dict[bytes, str] = {}
    for path in progress(train_images, len(train_images)):
        try:
            keys.setdefault(content_key(path), path)
        except OSError:
            continue  # an unreadable file is its own finding
    copies = 0
    for path in progress(eval_images, len(eval_images)):
        try:
            twin = keys.get(content_key(path))
        except OSError:
            continue
        if twin is not None:
            copies += 1
            report.warn(path, f"the same picture as training image {twin}: a score on it is not held out")
    report.counts["eval images that are training images"] = copies
