"""Read and validate the competition layout into tables.

train: ROOT/train/train.csv (id,gender,race,age,path) + ROOT/train/images/<path>/<7 images>
eval:  ROOT/eval/info.csv (ImageID,ans) + ROOT/eval/images/<ImageID>

The person key is the folder (``path``), never the id: ids repeat in the real data.
Every problem is raised as a one-line DataError that names the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mask_cls import labels as L
from mask_cls.errors import DataError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png"}
TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
EVAL_COLUMNS = ("ImageID", "ans")


def read_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV as stripped strings, with its required columns checked; problems name the file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(df.columns)})")
    for c in df.columns:
        df[c] = df[c].str.strip()
    return df


def is_hidden(name: str) -> bool:
    """Junk of the real data: AppleDouble ``._x``, ``.DS_Store``, ``.ipynb_checkpoints``."""
    return name.startswith(".")


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


def _check_image_header(path: Path) -> None:
    """Cheap readability check (header only): catches empty, text and foreign files early."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")
        with Image.open(path) as im:
            im.size  # noqa: B018 - forces the header parse
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: unreadable image ({type(e).__name__})") from None


def read_train(root: str | Path, check_images: bool = True) -> pd.DataFrame:
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
    for i, r in enumerate(df.itertuples(index=False), start=2):  # line 1 is the header
        gender = r.gender.lower()
        if gender not in L.GENDER_CODES:
            raise DataError(f"{csv}:{i}: unknown gender {r.gender!r} (expected male or female)")
        try:
            age = float(r.age)
        except ValueError:
            raise DataError(f"{csv}:{i}: age {r.age!r} is not a number") from None
        if not np.isfinite(age) or age < 0 or age > 150:
            raise DataError(f"{csv}:{i}: age {r.age!r} is out of range")
        folder = img_root / r.path
        if not r.path or not folder.is_dir():
            raise DataError(f"{folder}: person folder of {csv.name} line {i} not found")
        images = person_images(folder)
        missing = [s for s in L.MASK_FILES if s not in images]
        if missing:
            raise DataError(f"{folder}: missing image(s) {', '.join(missing)}")
        for stem, path in images.items():
            if check_images:
                _check_image_header(path)
            mask = L.MASK_FILES[stem]
            g = L.GENDER_CODES[gender]
            rows.append((r.path, r.id, str(path), mask, g, int(age), r.race,
                         L.encode(mask, g, L.age_group(int(age)))))
    cols = ["person", "id", "image", "mask", "gender", "age", "race", "label"]
    return pd.DataFrame(rows, columns=cols)


def read_eval(root: str | Path, check_images: bool = True) -> pd.DataFrame:
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
    for i, name in enumerate(df["ImageID"], start=2):
        p = img_root / name
        if not name or not p.is_file():
            raise DataError(f"{csv}:{i}: image {name!r} not found in {img_root}")
        if check_images:
            _check_image_header(p)
        paths.append(str(p))
    df["image"] = paths
    return df


def has_eval(root: str | Path) -> bool:
    return (Path(root) / "eval" / "info.csv").is_file()
