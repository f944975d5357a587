"""``task=check`` of the competition layout: every problem of train/ and eval/, not just the first,
with the training readers' own rules (``_competition_tables``) and verdicts."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from mask_cls import labels as L
from mask_cls.data.doctor import check_image, csv_or_finding
from mask_cls.data.images import IMAGE_EXTENSIONS, is_hidden
from mask_cls.data.layouts.competition.tables import (
    EVAL_COLUMNS,
    TRAIN_COLUMNS,
    person_row_problems,
)
from mask_cls.data.report import Report
from mask_cls.errors import DataError
from mask_cls.io import inside

FOLDER_RE = re.compile(r"^(?P<id>[^_]+)_(?P<gender>[^_]+)_(?P<race>[^_]+)_(?P<age>[^_]+)$")


def _listdir(folder: Path) -> list[os.DirEntry]:
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return []


def check_train(root: Path, report: Report, progress: Callable[[Iterable, int], Iterable]) -> None:
    csv, images = root / "train" / "train.csv", root / "train" / "images"
    df = csv_or_finding(csv, TRAIN_COLUMNS, report)
    if not images.is_dir():
        report.error(images, "folder not found")
        return
    folders = {e.name for e in _listdir(images) if not is_hidden(e.name) and e.is_dir(follow_symlinks=False)}
    if df is None:
        return
    report.counts["persons"] = len(df)
    for value, n in df["path"].value_counts().items():
        if n > 1:
            report.error(csv, f"folder {value} listed {n} times")
    for value, n in df.drop_duplicates("path")["id"].value_counts().items():
        if n > 1:
            report.warn(csv, f"id {value} used by {n} rows (persons are keyed by folder)")
    for folder in sorted(folders - set(df["path"])):
        report.warn(images / folder, "folder without a row in train.csv")
    rows = list(df.itertuples(index=False))
    for i, r in progress(list(zip(df.index, rows)), len(rows)):
        where = f"{csv}:{i}"
        problems = person_row_problems(r.gender, r.age)  # the training reader's own rules
        for problem in problems:
            report.error(where, problem)
        m = FOLDER_RE.match(r.path)
        if not problems and m and (m["gender"].lower() != r.gender.lower() or m["age"] != r.age or m["id"] != r.id):
            report.error(where, f"folder {r.path} disagrees with the row ({r.id}, {r.gender}, {r.age})")
        try:  # the training reader's own rule: a folder (links resolved) inside train/images
            folder = inside(images, r.path, where) if r.path else images
        except DataError as e:
            report.error(where, str(e).removeprefix(f"{where}: "))
            continue
        if not r.path or not folder.is_dir():
            report.error(where, f"folder {r.path} not found")
            continue
        check_person(folder, report, images)


def check_person(folder: Path, report: Report, img_root: Path | None = None) -> None:
    """One person folder, with the training reader's verdicts: links are followed as training
    follows them, and one out of ``img_root`` is an error as it is there."""
    img_root = img_root or folder.parent
    stems: dict[str, list[str]] = {}
    for e in _listdir(folder):
        if is_hidden(e.name):
            report.counts["hidden_files_skipped"] += 1
            continue
        path = folder / e.name
        if not path.is_file():
            report.warn(path, "unexpected entry (folder or link) ignored")
            continue
        stem, ext = os.path.splitext(e.name)
        if ext.lower() not in IMAGE_EXTENSIONS or stem not in L.MASK_FILES:
            report.warn(path, "extra file (not one of the 7 expected images)")
            continue
        try:
            inside(img_root, str(path.relative_to(img_root)), str(path))
        except DataError as err:
            report.error(path, str(err).removeprefix(f"{path}: "))
            continue
        stems.setdefault(stem, []).append(e.name)
        check_image(path, report)
    missing = [s for s in L.MASK_FILES if s not in stems]
    if missing:
        report.error(folder, f"missing image(s) {', '.join(missing)}")
    for stem, names in stems.items():
        if len(names) > 1:
            report.error(folder, f"several images for {stem}: {', '.join(names)}")


def check_eval(root: Path, report: Report, progress: Callable[[Iterable, int], Iterable]) -> None:
    csv, images = root / "eval" / "info.csv", root / "eval" / "images"
    if not csv.exists() and not images.exists():
        report.warn(root / "eval", "no eval set")
        return
    df = csv_or_finding(csv, EVAL_COLUMNS, report)
    if df is None:
        return
    files = {e.name for e in _listdir(images) if not is_hidden(e.name)} if images.is_dir() else set()
    if not images.is_dir():
        report.error(images, "folder not found")
    for value, n in df["ImageID"].value_counts().items():
        if n > 1:
            report.error(csv, f"ImageID {value} listed {n} times")
    for name in sorted(files - set(df["ImageID"])):
        report.warn(images / name, "image without a row in info.csv")
    report.counts["eval_images"] = len(df)
    for i, name in progress(list(df["ImageID"].items()), len(df)):
        try:  # the prediction reader's own rule: a file (links resolved) inside eval/images
            path = inside(images, name, f"{csv}:{i}")
        except DataError as e:
            report.error(f"{csv}:{i}", str(e).removeprefix(f"{csv}:{i}: "))
            continue
        if not path.is_file():
            report.error(f"{csv}:{i}", f"image {name!r} not found in {images}")
        else:
            check_image(path, report)
