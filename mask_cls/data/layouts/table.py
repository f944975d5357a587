"""``data=table data.csv=FILE``: one CSV, a row per image, images anywhere under ``data.root``.

Columns: ``path`` (relative to the CSV's folder, or absolute), and either ``mask`` (wear /
incorrect / not_wear or 0/1/2), ``gender`` (male / female) and ``age`` (a number), or one
``label`` (0..17); optional ``person`` (else the image's folder is its person). Every image
must lie inside ``data.root`` (default: the CSV's folder) once links are resolved. With labels
only, ages are unknown: ``data.age_threshold`` and ``data.drop_ages`` are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mask_cls import labels as L
from mask_cls.data.layout import check_image_header, read_table
from mask_cls.errors import DataError

MASK_VALUES = {**{name: i for i, name in enumerate(L.MASK_NAMES)}, "0": 0, "1": 1, "2": 2}
#: the age standing for each group when a table gives labels only (folds stratify on it)
GROUP_AGE = {0: 25, 1: 45, 2: L.AGE_OLD_FROM}


def _image(csv: Path, root: Path, line: int, value: str) -> Path:
    path = Path(value) if Path(value).is_absolute() else csv.parent / value
    if not value or not path.resolve().is_relative_to(root.resolve()):
        raise DataError(f"{csv}:{line}: path {value!r} is not inside data.root={root}")
    if not path.is_file():
        raise DataError(f"{csv}:{line}: image {value!r} not found")
    return path


def labels_only(df: pd.DataFrame) -> bool:
    """A table with one ``label`` column instead of mask, gender and age (its ages are unknown)."""
    return "label" in df.columns and not {"mask", "gender", "age"} <= set(df.columns)


def _labels(csv: Path, df: pd.DataFrame) -> pd.DataFrame:
    """mask, gender, age, label of every row, checked; ``age`` from the label's group when absent."""
    if labels_only(df):
        y = pd.to_numeric(df["label"], errors="coerce")
        bad = y.isna() | (y < 0) | (y >= L.NUM_CLASSES) | (y != y.round())
        if bad.any():
            line = bad[bad].index[0]
            raise DataError(f"{csv}:{line}: label {df['label'][line]!r} is not a class in 0..{L.NUM_CLASSES - 1}")
        m, g, a = L.decode(y.astype(int).to_numpy())
        return pd.DataFrame({"mask": m, "gender": g, "age": [GROUP_AGE[int(v)] for v in a]}, index=df.index)
    missing = [c for c in ("mask", "gender", "age") if c not in df.columns]
    if missing:
        raise DataError(f"{csv}: missing column(s) {', '.join(missing)} (or one label column instead)")
    out = pd.DataFrame(index=df.index)
    out["mask"] = df["mask"].str.lower().map(MASK_VALUES)
    out["gender"] = df["gender"].str.lower().map(L.GENDER_CODES)
    out["age"] = pd.to_numeric(df["age"], errors="coerce")
    for col, what in (("mask", "mask state (wear, incorrect, not_wear or 0/1/2)"),
                      ("gender", "gender (male or female)")):
        if out[col].isna().any():
            line = out.index[out[col].isna()][0]
            raise DataError(f"{csv}:{line}: {df[col][line]!r} is not a {what}")
    bad = ~np.isfinite(out["age"]) | (out["age"] < 0) | (out["age"] > L.MAX_AGE)
    if bad.any():
        line = bad[bad].index[0]
        raise DataError(f"{csv}:{line}: age {df['age'][line]!r} is out of range 0..{L.MAX_AGE}")
    return out.astype({"mask": int, "gender": int, "age": int})


def read_train(root: str | Path | None, check_images: bool = True, on_bad_image: str = "error",
               csv: str | None = None) -> pd.DataFrame:
    if not csv:
        raise DataError("data=table needs data.csv=FILE (a row per image: path, mask, gender, age or label)")
    csv = Path(csv)
    root = Path(root) if root else csv.parent
    df = read_table(csv, ("path",))
    if df.empty:
        raise DataError(f"{csv}: no rows")
    dup = df["path"][df["path"].duplicated()]
    if len(dup):
        raise DataError(f"{csv}:{dup.index[0]}: image {dup.iloc[0]} listed twice")
    values = _labels(csv, df)
    images = [_image(csv, root, line, v) for line, v in df["path"].items()]
    person = df["person"] if "person" in df.columns else pd.Series(
        [str(p.parent.resolve().relative_to(root.resolve())) for p in images], index=df.index)
    table = pd.DataFrame({"person": person.to_numpy(), "id": person.to_numpy(), "image": [str(p) for p in images],
                          **{c: values[c].to_numpy() for c in ("mask", "gender", "age")}})
    table["label"] = L.encode(table["mask"].to_numpy(), table["gender"].to_numpy(), L.age_group(table["age"].to_numpy()))
    if check_images:
        keep = [check_image_header(Path(p), on_bad_image) for p in table["image"]]
        table = table[keep].reset_index(drop=True)
    table.attrs["ages_known"] = not labels_only(df)
    return table
