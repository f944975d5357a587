"""The competition layout (``data=mask``): ROOT/train/train.csv + person folders of 7 images,
ROOT/eval/info.csv + ROOT/eval/images. The readers live in ``mask_cls.data.layout`` and the
full check in ``mask_cls.data.doctor``; this file is the layout's face to the seam."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from mask_cls.data import doctor, layout
from mask_cls.data.layout import read_train  # noqa: F401  (the seam's read_train)
from mask_cls.data.report import Report

TABLES = ("train/train.csv", "eval/info.csv")


def read_eval(root: str | Path, check_images: bool = True, on_bad_image: str = "error") -> pd.DataFrame | None:
    """info.csv rows with their images, or None when ROOT has no eval set."""
    if not layout.has_eval(root):
        return None
    return layout.read_eval(root, check_images=check_images, on_bad_image=on_bad_image)


def check(root: str | Path | None, report: Report, progress: Callable[[Iterable, int], Iterable]) -> None:
    if root is None or not Path(root).is_dir():
        report.error(str(root), "data.root not found")
        return
    doctor.check_train(Path(root), report, progress)
    doctor.check_eval(Path(root), report, progress)


def copy_tables(root: str | Path, out: Path) -> Path:
    """``task=prepare``: train.csv and info.csv beside the copied images (paths are relative)."""
    for rel in TABLES:
        if (Path(root) / rel).is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(root) / rel, out / rel)
    return out / TABLES[0]
