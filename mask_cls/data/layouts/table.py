"""``data=table data.csv=FILE``: one CSV, a row per image, images anywhere under ``data.root``.

Columns: ``path`` (relative to the CSV's folder, or absolute), and either ``mask`` (wear /
incorrect / not_wear or 0/1/2), ``gender`` (male / female) and ``age`` (a number), or one
``label`` (0..17); optional ``person`` (else the image's folder is its person). Every image
must lie inside ``data.root`` (default: the CSV's folder) once links are resolved. With labels
only, ages are unknown: ``data.age_threshold`` and ``data.drop_ages`` are refused.

This file is the layout's face to the seam and imports nothing heavy (``preflight`` runs before
pandas loads); the readers live in ``mask_cls.data.table_reader``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mask_cls.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mask_cls.data.report import Report

OPTIONS = ("csv",)  # the data.* keys this layout reads besides data.root
LABEL_COLUMNS = ("mask", "gender", "age")


def default_root(csv: str | None = None) -> Path | None:
    """Without ``data.root``, the images lie under the CSV's folder."""
    return Path(csv).parent if csv else None


def _paths(root: str | Path | None, csv: str | None) -> tuple[Path, Path]:
    if not csv:
        raise DataError("data=table needs data.csv=FILE (a row per image: path, mask, gender, age or label)")
    return Path(csv), Path(root) if root else Path(csv).parent


def preflight(root: str | Path | None, needs: Iterable[str], csv: str | None = None) -> None:
    """Before anything heavy loads: the CSV, its columns and the root exist (one line each)."""
    from mask_cls.data.csv_header import require

    if "train" not in needs:
        return
    table, folder = _paths(root, csv)
    have = require(table, ("path",))
    if "label" not in have and not set(LABEL_COLUMNS) <= set(have):
        missing = [c for c in LABEL_COLUMNS if c not in have]
        raise DataError(f"{csv}: missing column(s) {', '.join(missing)} (or one label column instead)")
    if not folder.is_dir():
        raise DataError(f"{folder}: data.root not found")


def read_train(root: str | Path | None, check_images: bool = True, on_bad_image: str = "error",
               csv: str | None = None) -> pd.DataFrame:
    from mask_cls.data import table_reader

    return table_reader.read_train(*_paths(root, csv), check_images, on_bad_image)


def read_eval(root: str | Path | None, check_images: bool = True, on_bad_image: str = "error",
              csv: str | None = None) -> None:
    """A table has no eval set: predictions for other images come from ``images=FOLDER``."""
    return None


def check(root: str | Path | None, report: Report, progress: Callable[[Iterable, int], Iterable],
          csv: str | None = None) -> None:
    from mask_cls.data import table_reader

    try:
        table, folder = _paths(root, csv)
    except DataError as e:
        report.error("data.csv", str(e))
        return
    table_reader.check(table, folder, report, progress)


def copy_tables(root: str | Path | None, out: Path, csv: str | None = None) -> Path:
    from mask_cls.data import table_reader

    return table_reader.copy_tables(*_paths(root, csv), out)
