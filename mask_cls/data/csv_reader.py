"""The one CSV reader of every table the project reads (train.csv, info.csv, a table layout's
CSV, relabel files, pseudo-labels, submissions): stripped strings, required columns checked,
each row indexed by its line in the file, every problem one line naming the file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mask_cls.data.csv_header import missing_message
from mask_cls.errors import DataError


def read_table(path: Path, columns: tuple[str, ...], comments: bool = False) -> pd.DataFrame:
    """A CSV as stripped strings, with its required columns checked; problems name the file.
    The index is each row's line number in the file; ``comments``: lines starting with ``#``
    (before the header or between rows) are skipped."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    skip = 0
    if comments:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            for line in f:
                if not line.lstrip().startswith("#"):
                    break
                skip += 1
    try:  # blank lines kept while reading, so that the index is the file's line number
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skip_blank_lines=False,
                         skiprows=skip)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(missing_message(path, missing, list(df.columns)))
    for c in df.columns:
        df[c] = df[c].str.strip()
    df.index = range(skip + 2, skip + len(df) + 2)  # the header's line comes first
    keep = (df != "").any(axis=1)  # blank lines leave; the others keep their line numbers
    if comments:
        keep &= ~df.iloc[:, 0].str.startswith("#")
    return df[keep]


def listed_images(csv: Path, images: pd.Series, roots: Sequence[str | Path] = ()) -> list[str]:
    """The image paths a table lists (``images``, indexed by line; absolute or relative to the
    csv's folder), each an existing file inside the csv's folder or one of ``roots`` once links
    are resolved: a file cannot point the run anywhere else."""
    allowed = [Path(r).resolve() for r in (csv.parent, *roots) if r]
    paths = []
    for line, p in images.items():
        path = Path(p) if os.path.isabs(p) else csv.parent / p
        if not p or not path.is_file():
            raise DataError(f"{csv}:{line}: image {p!r} not found")
        if not any(path.resolve().is_relative_to(a) for a in allowed):
            raise DataError(f"{csv}:{line}: image {p!r} lies outside the data root, the unlabeled folder "
                            "and the csv's folder")
        paths.append(str(path))
    return paths
