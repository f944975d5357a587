"""Pseudo-label files: choose confident predictions, write them, read them back, and merge
them into the training side of a fold (never into validation).

``pseudo.csv``: ``image,label,confidence`` (image: a path, absolute or relative to the csv's
folder; label: 0..17; confidence: the ensemble's probability of that label).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mask_cls import labels as L
from mask_cls.data.csv_reader import listed_images, read_table
from mask_cls.errors import ConfigError, DataError
from mask_cls.runfiles import read_json

log = logging.getLogger(__name__)
COLUMNS = ("image", "label", "confidence")
#: an age inside each group, for samplers that read ages (the label itself is what trains)
GROUP_AGE = {0: 25, 1: 45, 2: 60}


def check_selection(threshold: float, top_share: float | None) -> None:
    if not 0 <= threshold <= 1:
        raise ConfigError(f"task.threshold={threshold}: must be in [0, 1]")
    if top_share is not None and not 0 < top_share <= 1:
        raise ConfigError(f"task.top_share={top_share}: must be in (0, 1], or null")


def select(probs: np.ndarray, threshold: float, top_share: float | None = None) -> np.ndarray:
    """Which rows to keep: confidence (max probability) >= ``threshold`` and, with
    ``top_share``, among the most confident ``ceil(top_share * n_c)`` of the n_c images
    predicted as their class (so rare classes keep their share too)."""
    check_selection(threshold, top_share)
    conf, pred = probs.max(1), probs.argmax(1)
    keep = conf >= threshold
    if top_share is not None:
        top = np.zeros(len(probs), dtype=bool)
        for c in np.unique(pred):
            idx = np.flatnonzero(pred == c)
            n = math.ceil(top_share * len(idx))
            top[idx[np.argsort(-conf[idx], kind="stable")[:n]]] = True
        keep &= top
    return keep


def selection_curve(y_true: np.ndarray, probs: np.ndarray, top_share: float | None = None) -> pd.DataFrame:
    """The selection (threshold, with ``top_share``) applied to labeled predictions at every
    candidate threshold, ascending: images kept, their share of all, and the share of them that
    is right (the pseudo-labels' precision). Candidates are the confidences at 201 quantiles
    (every confidence of up to 201 images; a grid among more); thresholds keeping nothing are left out."""
    conf, right = probs.max(1), probs.argmax(1) == np.asarray(y_true)
    rows = []
    for t in np.unique(np.quantile(conf, np.linspace(0, 1, 201), method="higher")):
        keep = select(probs, float(t), top_share)
        if keep.any():
            rows.append({"threshold": float(t), "kept": int(keep.sum()), "kept_share": float(keep.mean()),
                         "right": float(right[keep].mean())})
    return pd.DataFrame(rows, columns=["threshold", "kept", "kept_share", "right"])


def threshold_on_curve(curve: pd.DataFrame, target: float) -> tuple[float | None, float]:
    """The lowest threshold of a :func:`selection_curve` whose selection is right at least
    ``target`` of the time, so the most images are kept at that precision; (None, the best
    precision any threshold reaches) when none does."""
    ok = curve[curve["right"] >= target]
    if len(ok):
        return float(ok["threshold"].iloc[0]), float(ok["right"].iloc[0])
    return None, float(curve["right"].max()) if len(curve) else 0.0


def pseudo_table(paths: Sequence[str], probs: np.ndarray, keep: np.ndarray) -> pd.DataFrame:
    """The kept rows, in the order of ``paths``."""
    idx = np.flatnonzero(keep)
    return pd.DataFrame({"image": np.asarray(paths, dtype=object)[idx], "label": probs[idx].argmax(1),
                         "confidence": probs[idx].max(1).round(6)})


def persons_digest(persons) -> str:
    """A short digest of a set of person keys (which persons a fold validates on)."""
    import hashlib

    return hashlib.sha1("\n".join(sorted({str(p) for p in persons})).encode()).hexdigest()[:16]


def source_csv(spec: str | Path, fold: int, n_folds: int, split_seed: int, val_persons=None) -> Path:
    """The pseudo-label file that training on ``fold`` reads from ``data.pseudo_csv=spec``.

    A file is itself. A task=pseudo folder of a cv run gives fold k its ``pseudo_fold{k}.csv``
    (labels from the one model that never saw fold k's validation persons), provided the folds
    are the same: the same n_folds and split_seed, and (where the cv run recorded them) the same
    validation persons (``val_persons``) in fold k; a folder without per-fold files gives ``pseudo.csv``."""

    path = Path(spec)
    if not path.is_dir():
        if path.name == "pseudo.csv" and (path.parent / "pseudo_fold0.csv").is_file():
            log.warning("%s: the fold ensemble's pseudo-labels in every fold: the CV score is optimistic; "
                        "data.pseudo_csv=%s gives each fold the labels of its own model", path, path.parent)
        return path
    meta_file = path / "pseudo.json"
    try:
        folds = read_json(meta_file).get("folds") if meta_file.is_file() else None
    except (ConfigError, AttributeError):
        raise DataError(f"{meta_file}: not a readable pseudo.json") from None
    if not folds:
        log.warning("%s: pseudo-labels of a model ensemble; if those models were trained on these folds, the CV "
                    "score is optimistic (per-fold files come from task=pseudo on a cv run)", path / "pseudo.csv")
        return path / "pseudo.csv"
    if not isinstance(folds, dict) or (folds.get("n_folds"), folds.get("split_seed")) != (n_folds, split_seed):
        got = (folds.get("n_folds"), folds.get("split_seed")) if isinstance(folds, dict) else folds
        raise DataError(f"{meta_file}: per-fold pseudo-labels of n_folds, split_seed = {got}; this run has "
                        f"{(n_folds, split_seed)}: use the same folds, or data.pseudo_csv={path / 'pseudo.csv'}")
    recorded = (folds.get("persons") or {}).get(str(fold))
    if val_persons is not None and recorded is None:  # no evidence: fail closed
        raise DataError(f"{meta_file}: records no validation persons for fold {fold}, so nothing shows that its "
                        f"pseudo-labels come from a model that never saw them; use data.pseudo_csv={path / 'pseudo.csv'}")
    if recorded is not None and val_persons is not None and recorded != persons_digest(val_persons):
        raise DataError(f"{meta_file}: fold {fold}'s validation persons are not this run's (other data, or persons "
                        "added or relabeled): its pseudo-labels could come from a model that saw them")
    return path / f"pseudo_fold{fold}.csv"


def read_pseudo(csv: str | Path, roots: Sequence[str | Path] = ()) -> pd.DataFrame:
    """A checked pseudo-label table with absolute image paths; every problem names the file.

    Every image must lie inside the csv's folder or one of ``roots`` (the data root, the
    unlabeled folder) once links are resolved: a file cannot point the run anywhere else."""
    csv = Path(csv)
    if not csv.is_file():
        raise DataError(f"{csv}: pseudo-label file not found")
    df = read_table(csv, ("image", "label"))
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad = labels.isna() | (labels % 1 != 0) | (labels < 0) | (labels >= L.NUM_CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{csv}:{df.index[i]}: label {df['label'].iloc[i]!r} is not a class 0..{L.NUM_CLASSES - 1}")
    paths = listed_images(csv, df["image"], roots)
    return df.assign(image=paths, label=labels.astype(int))


def training_rows(pseudo: pd.DataFrame) -> pd.DataFrame:
    """Pseudo rows in the training table's columns; each image is its own 'person'."""
    m, g, a = L.decode(pseudo["label"].to_numpy())
    return pd.DataFrame({"person": "pseudo:" + pseudo["image"].astype(str), "id": "", "image": pseudo["image"], "mask": m,
                         "gender": g, "age": [GROUP_AGE[int(v)] for v in a], "race": "",
                         "label": pseudo["label"].to_numpy()})


def content_key(path: str) -> bytes:
    """What an image *shows*: a hash of its decoded pixels (a JPEG at 1/8 scale, its cheap
    DCT-domain decode in which every pixel still counts), so a copy with bytes appended, other
    metadata or another encoding of the same pixels is the same image; a file that does not
    decode is keyed by its bytes."""
    import hashlib

    import cv2

    data = Path(path).read_bytes()
    flag = cv2.IMREAD_REDUCED_COLOR_8 if data.startswith(b"\xff\xd8") else cv2.IMREAD_COLOR
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag) if data else None
    if img is None:
        return b"bytes:" + hashlib.sha256(data).digest()
    return hashlib.sha256(repr(img.shape).encode() + img.tobytes()).digest()


def among(paths: pd.Series, table_images: pd.Series) -> pd.Series:
    """Per path, whether it is the same image as one of ``table_images``: the same inode (a hard
    or symbolic link) or the same pixels (a copy, re-saved or with bytes added). Names prove
    nothing, so neither ``realpath`` nor the file name is compared."""
    ids: set[tuple[int, int]] = set()
    for q in table_images:
        st = os.stat(q)
        ids.add((st.st_dev, st.st_ino))
    keys: set[bytes] | None = None

    def same(p: str) -> bool:
        nonlocal keys
        st = os.stat(p)
        if (st.st_dev, st.st_ino) in ids:
            return True
        if keys is None:  # decoded only once a path is not a link of one of them
            keys = {content_key(q) for q in table_images}
        return content_key(p) in keys

    return paths.map(same).astype(bool)


def unique_files(paths: pd.Series) -> pd.Series:
    """Per path, whether it is the first of its file (an inode listed again, or a link to it,
    is a repeat)."""
    seen: set[tuple[int, int]] = set()

    def first(p: str) -> bool:
        st = os.stat(p)
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return False
        seen.add(key)
        return True

    return paths.map(first).astype(bool)


def one_row_per_file(paths: list[str]) -> tuple[list[str], int]:
    """``paths`` with every repeat of a file (the same inode, a link to it) left out, and their number."""
    first = unique_files(pd.Series(paths, dtype=object)).to_numpy()
    if (~first).any():
        log.warning("%d unlabeled path(s) repeat an image already listed (the same file or a link to it): "
                    "labeled once", int((~first).sum()))
    return [p for p, f in zip(paths, first) if f], int((~first).sum())


def merge(train: pd.DataFrame, val: pd.DataFrame, pseudo: pd.DataFrame, weight: float = 1.0,
          source: str = "pseudo_csv") -> tuple[pd.DataFrame, dict]:
    """``train`` plus the pseudo rows (loss weight ``weight``, a ``weight`` column when it is
    not 1), and what happened to the rows. A pseudo image that is a validation image of this fold
    (the file itself, a link or a copy) is an error (it would leak); one that is a labeled
    training image is dropped (its true label wins); an image listed again (or a link to it) is
    kept once."""
    if weight < 0:
        raise ConfigError(f"data.pseudo_weight={weight}: must be >= 0")
    in_val = among(pseudo["image"], val["image"])
    if in_val.any():
        raise DataError(f"{source}: {int(in_val.sum())} pseudo row(s) are validation images of this fold "
                        f"(first: {pseudo['image'][in_val].iloc[0]}); pseudo-labels must come from unlabeled images")
    first = unique_files(pseudo["image"]).to_numpy()
    in_train = among(pseudo["image"], train["image"]).to_numpy()
    if (~first).any():
        log.warning("%s: %d pseudo row(s) repeat an image already listed (the same file or a link to it): dropped",
                    source, int((~first).sum()))
    if in_train.any():
        log.warning("%s: %d pseudo row(s) are labeled training images; their true labels are kept",
                    source, int((in_train & first).sum()))
    rows = training_rows(pseudo[first & ~in_train].reset_index(drop=True))
    summary = {"rows": len(pseudo), "duplicates": int((~first).sum()), "labeled": int((first & in_train).sum()),
               "joined": len(rows)}
    log.info("%s: %d pseudo row(s) join the training side (loss weight %g)", source, len(rows), weight)
    merged = pd.concat([train.assign(pseudo=False), rows.assign(pseudo=True)], ignore_index=True)
    if weight != 1.0:
        merged["weight"] = np.where(merged["pseudo"], weight, 1.0).astype(np.float32)
    return merged, summary
