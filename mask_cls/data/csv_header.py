"""A CSV's header read with the standard library alone: the required columns of a table are
checked before pandas (and anything heavier) loads, with the messages of the full reader
(``mask_cls.data.csv_reader.read_table``)."""

from __future__ import annotations

import csv
from pathlib import Path

from mask_cls.errors import DataError


def columns(path: str | Path) -> list[str]:
    """The column names of the first line that is not a ``#`` comment (stripped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f):
                if row and not row[0].lstrip().startswith("#"):
                    return [c.strip() for c in row]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: not a readable CSV ({type(e).__name__})") from None
    raise DataError(f"{path}: not a readable CSV (no header)")


def missing_message(path: str | Path, missing: list[str], have: list[str]) -> str:
    return f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(have)})"


def require(path: str | Path, required: tuple[str, ...]) -> list[str]:
    """The header of ``path``, refused in one line when a required column is missing."""
    have = columns(path)
    missing = [c for c in required if c not in have]
    if missing:
        raise DataError(missing_message(path, missing, have))
    return have
