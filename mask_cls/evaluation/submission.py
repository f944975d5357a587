"""Submission files: write them in info.csv's rows and order, score them against answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mask_cls.errors import DataError
from mask_cls.io import write_csv
from mask_cls.labels import NUM_CLASSES


def write_submission(info: pd.DataFrame, preds: np.ndarray, path: str | Path) -> Path:
    """info.csv's rows in order, ``ans`` filled; written atomically."""
    preds = np.asarray(preds)
    if len(preds) != len(info):
        raise ValueError(f"{len(preds)} predictions for {len(info)} rows of info.csv")
    if preds.size and (preds.min() < 0 or preds.max() >= NUM_CLASSES):
        raise ValueError("predictions outside 0..17")
    sub = pd.DataFrame({"ImageID": info["ImageID"].to_numpy(), "ans": preds.astype(int)})
    return write_csv(sub, path)


def read_labels(path: str | Path, what: str) -> pd.Series:
    """ImageID -> ans from a submission or answer-key csv, checked."""
    from mask_cls.data.csv_reader import (
        read_table,  # the one CSV reader: same rules, line numbers in errors
    )

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    df = read_table(path, ("ImageID", "ans"))
    if df.empty:
        raise DataError(f"{path}: no rows (only a header)")
    dup = df["ImageID"][df["ImageID"].duplicated()]
    if len(dup):
        raise DataError(f"{path}:{dup.index[0]}: ImageID {dup.iloc[0]} listed twice")
    ans = pd.to_numeric(df["ans"], errors="coerce")
    bad = ans.isna() | (ans < 0) | (ans >= NUM_CLASSES) | (ans != ans.round())
    if bad.any():
        line = bad[bad].index[0]
        raise DataError(f"{path}:{line}: ans {df['ans'][line]!r} is not a class in 0..{NUM_CLASSES - 1}")
    return pd.Series(ans.astype(int).to_numpy(), index=df["ImageID"], name="ans")


def align(submission: pd.Series, answers: pd.Series, sub_path, ans_path) -> tuple[np.ndarray, np.ndarray]:
    """(truth, prediction) arrays over the answer key's images; every one must be predicted."""
    missing = answers.index.difference(submission.index)
    if len(missing):
        raise DataError(f"{sub_path}: {len(missing)} image(s) of {ans_path} have no prediction (e.g. {missing[0]})")
    extra = submission.index.difference(answers.index)
    if len(extra):
        raise DataError(f"{sub_path}: {len(extra)} row(s) for images not in {ans_path} (e.g. {extra[0]})")
    return answers.to_numpy(), submission.loc[answers.index].to_numpy()
