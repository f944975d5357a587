"""Soft-target files (``data.soft_targets``, written by ``task=distill``): a teacher's 18-class
probabilities per image, joined to the training side only.

``teacher_probs.csv``: ``image,p0,...,p17`` (image: a path, absolute or relative to the csv's
folder). Every labeled training image must have a row; a row whose image is not a labeled
training image joins as an unlabeled row (label -1: the KL term only); a validation image is
an error (the student would fit the teacher's view of the images it is scored on)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mask_cls.data.csv_reader import listed_images, read_table
from mask_cls.data.pseudo import GROUP_AGE, among, unique_files
from mask_cls.errors import DataError
from mask_cls.labels import PROB_COLUMNS

log = logging.getLogger("mask_cls")
#: how far a row's probabilities may sum from 1 (six decimals written per value)
SUM_TOLERANCE = 1e-3


def read_soft_targets(csv: str | Path, roots: Sequence[str | Path] = ()) -> pd.DataFrame:
    """The checked file: absolute image paths inside the csv's folder or ``roots``, finite
    probabilities in [0, 1] that sum to 1 per row; every problem names the file and line."""
    csv = Path(csv)
    df = read_table(csv, ("image", *PROB_COLUMNS))
    probs = df[PROB_COLUMNS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(probs).all(1) | (probs < 0).any(1) | (probs > 1).any(1) | \
        (np.abs(probs.sum(1) - 1) > SUM_TOLERANCE)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{csv}:{df.index[i]}: p0..p17 must be probabilities in [0, 1] that sum to 1")
    paths = listed_images(csv, df["image"], roots)
    out = pd.DataFrame(probs / probs.sum(1, keepdims=True), columns=PROB_COLUMNS).astype(np.float32)
    out.insert(0, "image", paths)
    return out


def attach(train: pd.DataFrame, val: pd.DataFrame, soft: pd.DataFrame, source: str) -> tuple[pd.DataFrame, dict]:
    """``train`` with the p0..p17 columns of its images, plus the file's other images as
    unlabeled rows (label -1, each its own person), and what happened to the rows. An unlabeled
    row that is a validation image of this fold (the file, a link or a copy) is an error; a
    labeled training image is the training table's own, even where a copy of it validates
    (a photo used for two persons: the split is by person, as in every run)."""
    soft = soft[unique_files(soft["image"]).to_numpy()].reset_index(drop=True)
    key = _file_keys(soft["image"])
    by_file = dict(zip(key, range(len(soft))))
    train_keys = _file_keys(train["image"])
    missing = [img for img, k in zip(train["image"], train_keys) if k not in by_file]
    if missing:
        raise DataError(f"{source}: {len(missing)} labeled training image(s) have no soft target (first: "
                        f"{missing[0]}): the file is another fold's or another dataset's")
    rows = [by_file[k] for k in train_keys]
    labeled = train.reset_index(drop=True).assign(**{c: soft[c].to_numpy()[rows] for c in PROB_COLUMNS})
    extra = soft[~pd.Series(key).isin(set(train_keys)).to_numpy()].reset_index(drop=True)
    in_val = among(extra["image"], val["image"])
    if in_val.any():
        raise DataError(f"{source}: {int(in_val.sum())} unlabeled row(s) are validation images of this fold (first: "
                        f"{extra['image'][in_val].iloc[0]}); a student must not learn the images it is scored on")
    unlabeled = pd.DataFrame({"person": "unlabeled:" + extra["image"].astype(str), "id": "", "image": extra["image"],
                              "mask": -1, "gender": -1, "age": GROUP_AGE[1], "race": "", "label": -1,
                              **{c: extra[c].to_numpy() for c in PROB_COLUMNS}})
    log.info("%s: soft targets for %d labeled and %d unlabeled image(s)", source, len(labeled), len(unlabeled))
    merged = pd.concat([labeled.assign(pseudo=False), unlabeled.assign(pseudo=True)], ignore_index=True)
    return merged, {"labeled": len(labeled), "unlabeled": len(unlabeled)}


def _file_keys(paths: pd.Series) -> list[tuple[int, int]]:
    """Each path's file identity (device, inode): a link or another spelling of a path is the same file."""
    keys = []
    for p in paths:
        st = os.stat(p)
        keys.append((st.st_dev, st.st_ino))
    return keys
