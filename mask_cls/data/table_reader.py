"""The readers of the table layout (``data=table``, whose face to the seam is
``mask_cls/data/layouts/table.py``): one CSV, a row per image, images anywhere under ``data.root``.

Columns: ``path`` (relative to the CSV's folder, or absolute), and either ``mask`` (wear /
incorrect / not_wear or 0/1/2), ``gender`` (male / female) and ``age`` (a number), or one
``label`` (0..17); optional ``person`` (else the image's folder is its person). Every image
must lie inside ``data.root`` (default: the CSV's folder) once links are resolved. With labels
only, ages are unknown: ``data.age_threshold`` and ``data.drop_ages`` are refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from mask_cls import labels as L
from mask_cls.data.csv_reader import read_table
from mask_cls.data.doctor import check_image
from mask_cls.data.images import check_image_header
from mask_cls.data.report import Report
from mask_cls.errors import DataError
from mask_cls.io import write_csv

Progress = Callable[[Iterable, int], Iterable]

MASK_VALUES = {**{name: i for i, name in enumerate(L.MASK_NAMES)}, "0": 0, "1": 1, "2": 2}
#: the age standing for each group when a table gives labels only (folds stratify on it)
GROUP_AGE = {0: 25, 1: 45, 2: L.AGE_OLD_FROM}


def _image(csv: Path, root: Path, value: str, real_root: Path | None = None) -> tuple[Path, str | None]:
    """The image a ``path`` value names, and what is wrong with it (None when nothing);
    ``real_root``: ``root`` resolved, once for a whole table."""
    path = Path(value) if Path(value).is_absolute() else csv.parent / value
    if not value or not path.resolve().is_relative_to(real_root or root.resolve()):
        return path, f"path {value!r} is not inside data.root={root}"
    if not path.is_file():
        return path, f"image {value!r} not found"
    return path, None


def labels_only(df: pd.DataFrame) -> bool:
    """A table with one ``label`` column instead of mask, gender and age (its ages are unknown)."""
    return "label" in df.columns and not {"mask", "gender", "age"} <= set(df.columns)


def _labels(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[int | None, str]]]:
    """mask, gender, age of every row (NaN where invalid; ``age`` from the label's group when
    absent) and every problem as (line, message); line None for the whole file."""
    out = pd.DataFrame(index=df.index)
    if labels_only(df):
        y = pd.to_numeric(df["label"], errors="coerce")
        bad = y.isna() | (y < 0) | (y >= L.NUM_CLASSES) | (y != y.round())
        problems = [(i, f"label {df['label'][i]!r} is not a class in 0..{L.NUM_CLASSES - 1}") for i in df.index[bad]]
        m, g, a = L.decode(y.where(~bad, 0).astype(int).to_numpy())
        out["mask"], out["gender"] = m, g
        out["age"] = [GROUP_AGE[int(v)] for v in a]
        out.loc[bad.to_numpy()] = np.nan
        return out, problems
    missing = [c for c in ("mask", "gender", "age") if c not in df.columns]
    if missing:
        return out, [(None, f"missing column(s) {', '.join(missing)} (or one label column instead)")]
    out["mask"] = df["mask"].str.lower().map(MASK_VALUES)
    out["gender"] = df["gender"].str.lower().map(L.GENDER_CODES)
    out["age"] = pd.to_numeric(df["age"], errors="coerce")
    out.loc[~np.isfinite(out["age"]) | (out["age"] < 0) | (out["age"] > L.MAX_AGE), "age"] = np.nan
    what = {"mask": "is not a mask state (wear, incorrect, not_wear or 0/1/2)",
            "gender": "is not a gender (male or female)", "age": f"is not an age in 0..{L.MAX_AGE}"}
    problems = [(i, f"{c} {value!r} {what[c]}") for c in what for i, value in df[c][out[c].isna()].items()]
    problems.sort(key=lambda p: p[0])  # line order, then mask, gender, age as before (a stable sort)
    return out, problems


Problems = list[tuple[int | None, str]]


def read_rows(csv: Path, root: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[Path], Problems]:
    """The CSV as read, its mask / gender / age, its images and every problem (line, message)
    in line order: the one set of rules of training (which stops at the first) and of
    ``task=check`` (which lists them all)."""
    df = read_table(csv, ("path",))
    if df.empty:
        return df, df, [], [(None, "no rows")]
    values, label_problems = _labels(df)
    problems = [(i, f"image {v} listed twice") for i, v in df["path"][df["path"].duplicated()].items()]
    problems += label_problems
    images, real_root, outside = [], root.resolve(), []
    for line, value in df["path"].items():
        path, problem = _image(csv, root, value, real_root)
        images.append(path)
        if problem and value and not path.resolve().is_relative_to(real_root):
            outside.append((line, value, path))
        elif problem:
            problems.append((line, problem))
    if outside:  # one finding with the fix, not one per row
        common = os.path.commonpath([str(p.resolve().parent) for p in images])
        line, value, _ = outside[0]
        problems.append((line, f"{len(outside)} path(s) lie outside data.root={root} (first: {value!r}); "
                               f"set data.root={common}, a folder that holds them all"))
    problems.sort(key=lambda p: -1 if p[0] is None else p[0])
    return df, values, images, problems


def one_folder_problem(df: pd.DataFrame, person: pd.Series) -> str | None:
    """Without a ``person`` column a person is an image's folder: all in one folder is one person."""
    if "person" in df.columns or len(df) < 2 or person.nunique() > 1:
        return None
    return (f"no person column, and all {len(df)} images sit in one folder, so they count as one person (persons "
            "come from folders) and folds cannot split them; add a person column (one id per person)")


def _where(csv: Path, line: int | None) -> str:
    return f"{csv}" if line is None else f"{csv}:{line}"


def read_train(csv: Path, root: Path, check_images: bool = True, on_bad_image: str = "error") -> pd.DataFrame:
    df, values, images, problems = read_rows(csv, root)
    if problems:
        line, message = problems[0]
        raise DataError(f"{_where(csv, line)}: {message}")
    person = df["person"] if "person" in df.columns else pd.Series(
        [str(p.parent.resolve().relative_to(root.resolve())) for p in images], index=df.index)
    if one_folder_problem(df, person):
        import logging

        logging.getLogger("mask_cls").warning("%s: %s", csv, one_folder_problem(df, person))
    table = pd.DataFrame({"person": person.to_numpy(), "id": person.to_numpy(), "image": [str(p) for p in images],
                          **{c: values[c].astype(int).to_numpy() for c in ("mask", "gender", "age")}})
    table["label"] = L.encode(table["mask"].to_numpy(), table["gender"].to_numpy(), L.age_group(table["age"].to_numpy()))
    if check_images:
        keep = [check_image_header(Path(p), on_bad_image) for p in table["image"]]
        table = table[keep].reset_index(drop=True)
    table.attrs["ages_known"] = not labels_only(df)
    return table


def check(csv: Path, root: Path, report: Report, progress: Progress) -> None:
    """Every problem of the table (each row's labels and path) and of each image (fully decoded)."""
    if not csv.is_file():
        report.error(csv, "data.csv not found")
        return
    if not root.is_dir():
        report.error(root, "data.root not found")
        return
    try:
        df, _, images, problems = read_rows(csv, root)
    except DataError as e:
        report.error(csv, str(e).removeprefix(f"{csv}: "))
        return
    for line, message in problems:
        report.error(_where(csv, line), message)
    report.counts["images listed"] = len(df)
    if "person" in df.columns:
        report.counts["persons"] = df["person"].nunique()
    elif len(df) > 1 and len({p.parent for p in images}) == 1:
        report.warn(csv, one_folder_problem(df, pd.Series(["one"] * len(df))) or "")
    real_root = root.resolve()
    for path in progress(images, len(images)):
        if path.is_file() and path.resolve().is_relative_to(real_root):
            check_image(path, report)


def copy_tables(csv: Path, root: Path, out: Path) -> Path:
    """``task=prepare``: the CSV beside the copied images, every ``path`` made relative to it."""
    df, _, images, problems = read_rows(csv, root)
    if problems:
        line, message = problems[0]
        raise DataError(f"{_where(csv, line)}: {message}")
    inside = csv.resolve().is_relative_to(root.resolve())
    target = out / (csv.resolve().relative_to(root.resolve()) if inside else csv.name)
    copied = [out / p.resolve().relative_to(root.resolve()) for p in images]
    write_csv(df.assign(path=[os.path.relpath(p, target.parent) for p in copied]), target)
    return target
