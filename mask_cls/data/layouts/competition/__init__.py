"""The competition layout (``data=mask``): ROOT/train/train.csv + person folders of 7 images,
ROOT/eval/info.csv + ROOT/eval/images. The readers are in ``tables.py`` and the full check in
``doctor.py`` beside this file, which is the layout's face to the seam and imports nothing
heavy (``preflight`` runs before pandas loads)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mask_cls.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mask_cls.data.report import Report

TABLES = ("train/train.csv", "eval/info.csv")
TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
EVAL_COLUMNS = ("ImageID", "ans")


def preflight(root: str | Path | None, needs: Iterable[str]) -> None:
    """Before anything heavy loads: the root, the tables that ``needs`` (``train``, ``eval``)
    reads with their columns, and the image folders (one line each, as the readers say it)."""
    from mask_cls.data.csv_header import require
    from mask_cls.data.root_hint import missing_root

    root = Path(str(root))
    if not root.is_dir():
        raise DataError(missing_root(root))
    if root.name == "train" and (root / "train.csv").is_file():  # the competition's train folder itself
        raise DataError(f"{root}: this is the train folder of the data; data.root is its parent: data.root={root.parent}")
    for need, table, columns in (("train", "train/train.csv", TRAIN_COLUMNS), ("eval", "eval/info.csv", EVAL_COLUMNS)):
        if need in needs:
            require(root / table, columns)
            images = root / Path(table).parent / "images"
            if not images.is_dir():
                raise DataError(f"{images}: folder not found")


def read_train(root: str | Path, check_images: bool = True, on_bad_image: str = "error") -> pd.DataFrame:
    from mask_cls.data.layouts.competition import tables as layout

    return layout.read_train(root, check_images=check_images, on_bad_image=on_bad_image)


def read_eval(root: str | Path, check_images: bool = True, on_bad_image: str = "error") -> pd.DataFrame | None:
    """info.csv rows with their images, or None when ROOT has no eval set."""
    from mask_cls.data.layouts.competition import tables as layout

    if not layout.has_eval(root):
        return None
    return layout.read_eval(root, check_images=check_images, on_bad_image=on_bad_image)


def check(root: str | Path | None, report: Report, progress: Callable[[Iterable, int], Iterable]) -> None:
    from mask_cls.data.layouts.competition import doctor

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
