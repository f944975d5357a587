"""The competition layout's readers (``layouts/competition.py`` is its light face to the seam).

train: ROOT/train/train.csv (id,gender,race,age,path) + ROOT/train/images/<path>/<7 images>
eval:  ROOT/eval/info.csv (ImageID,ans) + ROOT/eval/images/<ImageID>

The person key is the folder (``path``), never the id: ids repeat in the real data.
Every problem is raised as a one-line DataError that names the file.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from mask_cls import labels as L
from mask_cls.data.csv_reader import read_table
from mask_cls.data.images import IMAGE_EXTENSIONS, check_image_header, is_hidden
from mask_cls.data.layouts import competition
from mask_cls.errors import DataError
from mask_cls.io import inside

log = logging.getLogger("mask_cls")
TRAIN_COLUMNS, EVAL_COLUMNS = competition.TRAIN_COLUMNS, competition.EVAL_COLUMNS


def person_images(folder: Path) -> dict[str, Path]:
    """The seven images of a person folder keyed by stem, hidden files and sub-folders skipped."""
    found: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if is_hidden(f.name) or not f.is_file() or f.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        if f.stem in L.MASK_FILES:
            if f.stem in found:
                raise DataError(f"{folder}: two images for {f.stem} ({found[f.stem].name}, {f.name})")
            found[f.stem] = f
    return found


def person_row_problems(gender: str, age: str) -> list[str]:
    """What is wrong with a train.csv row's gender and age: the one set of rules that training
    (which stops at the first) and ``task=check`` (which lists them all) share."""
    problems = []
    if gender.lower() not in L.GENDER_CODES:
        problems.append(f"unknown gender {gender!r} (expected male or female)")
    problem = L.age_problem(age)
    return [*problems, problem] if problem else problems


def read_train(root: str | Path, check_images: bool = True, on_bad_image: str = "error") -> pd.DataFrame:
    """train.csv + person folders -> one row per image.

    Columns: person (folder), id, image (absolute path), mask, gender, age, race, label.
    """
    root = Path(root)
    csv = root / "train" / "train.csv"
    img_root = root / "train" / "images"
    df = read_table(csv, TRAIN_COLUMNS)
    if df.empty:
        raise DataError(f"{csv}: no rows")
    if not img_root.is_dir():
        raise DataError(f"{img_root}: folder not found")
    dup = df["path"][df["path"].duplicated()]
    if len(dup):
        raise DataError(f"{csv}: folder {dup.iloc[0]} listed twice")
    rows = []
    for i, r in zip(df.index, df.itertuples(index=False)):  # the index is the line number
        problems = person_row_problems(r.gender, r.age)
        if problems:
            raise DataError(f"{csv}:{i}: {problems[0]}")
        gender, age = r.gender.lower(), float(r.age)
        folder = inside(img_root, r.path, f"{csv}:{i}") if r.path else img_root / r.path
        if not r.path or not folder.is_dir():
            raise DataError(f"{folder}: person folder of {csv.name} line {i} not found")
        images = person_images(folder)
        for path in images.values():  # an image may not be a link out of the data root
            inside(img_root, str(path.relative_to(img_root)), f"{csv}:{i}")
        missing = [s for s in L.MASK_FILES if s not in images]
        if missing:
            raise DataError(f"{folder}: missing image(s) {', '.join(missing)}")
        for stem, path in images.items():
            if check_images and not check_image_header(path, on_bad_image):
                continue  # skipped: the image leaves the table (counted in the log)
            mask = L.MASK_FILES[stem]
            g = L.GENDER_CODES[gender]
            rows.append((r.path, r.id, str(path), mask, g, int(age), r.race,
                         L.encode(mask, g, L.age_group(int(age)))))
    cols = ["person", "id", "image", "mask", "gender", "age", "race", "label"]
    return pd.DataFrame(rows, columns=cols)


def read_eval(root: str | Path, check_images: bool = True, on_bad_image: str = "error") -> pd.DataFrame:
    """info.csv rows in their order, with the absolute image path. Columns: ImageID, ans, image."""
    root = Path(root)
    csv = root / "eval" / "info.csv"
    df = read_table(csv, EVAL_COLUMNS)
    if df.empty:
        raise DataError(f"{csv}: no rows")
    img_root = root / "eval" / "images"
    dup = df["ImageID"][df["ImageID"].duplicated()]
    if len(dup):
        raise DataError(f"{csv}: ImageID {dup.iloc[0]} listed twice")
    paths = []
    for i, name in df["ImageID"].items():
        p = inside(img_root, name, f"{csv}:{i}") if name else img_root
        if not name or not p.is_file():
            raise DataError(f"{csv}:{i}: image {name!r} not found in {img_root}")
        if check_images:  # a skipped eval image keeps its row: prediction fills and counts it
            check_image_header(p, on_bad_image)
        paths.append(str(p))
    df["image"] = paths
    return df


def has_eval(root: str | Path) -> bool:
    return (Path(root) / "eval" / "info.csv").is_file()
