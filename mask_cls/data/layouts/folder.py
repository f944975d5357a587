"""``data=folder data.root=ROOT``: timm's ImageFolder convention, one sub-folder per class.

    ROOT/<class>/.../<image>.jpg|.jpeg|.png

``<class>`` is one of the 18 classes, by index (``0``..``17``, ``07`` too) or by its folder name
(``mask_cls.labels.folder_name``: ``wear_male_under30``, ``incorrect_female_30to59``,
``not_wear_male_60plus``, ...); images may sit in sub-folders of it. Folders with other names
are left out (one warning). **Persons** come from the file name: the part before a double
underscore, ``<person>__<anything>.jpg`` (``000123__mask1.jpg`` is person ``000123``, wherever
its class folder is). An image without one is its own person, and a warning says that folds can
then put one person on both sides (a leak) if a person has several images. Ages are known only
as the class's group (as a table with labels only: ``data.age_threshold`` and
``data.drop_ages`` are refused). There is no eval set: predict other images with
``images=FOLDER``.

This file is the layout's face to the seam and imports nothing heavy at its top.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from mask_cls.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

    from mask_cls.data.report import Report

PERSON_SEPARATOR = "__"


def class_of(name: str) -> int | None:
    """The class a folder name stands for (an index or a ``labels.folder_name``), else None."""
    from mask_cls import labels as L

    if name.isdigit() and int(name) < L.NUM_CLASSES:
        return int(name)
    return L.FOLDER_CLASSES.get(name)


def person_of(path: Path) -> str | None:
    stem = path.stem
    return stem.split(PERSON_SEPARATOR, 1)[0] or None if PERSON_SEPARATOR in stem else None


def _class_folders(root: Path) -> tuple[dict[int, list[Path]], list[str]]:
    """Class -> its folders, and the names of the folders that are no class."""
    found: dict[int, list[Path]] = {}
    other = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        c = class_of(entry.name)
        if c is None:
            other.append(entry.name)
        else:
            found.setdefault(c, []).append(Path(entry.path))
    return found, other


def preflight(root: str | Path | None, needs: Iterable[str]) -> None:
    """Before anything heavy loads: the root exists and holds class folders."""
    if "train" not in needs:
        return
    from mask_cls.data.root_hint import missing_root

    root = Path(str(root))
    if not root.is_dir():
        raise DataError(missing_root(root))
    found, other = _class_folders(root)
    if not found:
        raise DataError(f"{root}: no class folders (0..17 or names like wear_male_under30; found: "
                        f"{', '.join(other[:5]) or 'no folders'})")


def rows(root: Path) -> tuple[list[tuple[str, str, int]], list[str], int]:
    """(person, image, class) of every image, the folders left out, and images without a person."""
    from mask_cls.data.unlabeled import images_under  # the one folder walk (hidden, links, names)

    found, other = _class_folders(root)
    out, anonymous = [], 0
    for c, folders in sorted(found.items()):
        for folder in folders:
            for path in images_under(folder, within=root):
                person = person_of(path)
                if person is None:
                    anonymous += 1
                    person = f"image:{path.relative_to(root)}"
                out.append((person, str(path), c))
    return out, other, anonymous


def _warnings(root: Path, other: list[str], anonymous: int, total: int) -> list[str]:
    said = []
    if other:
        said.append(f"{len(other)} folder(s) are no class and are left out: {', '.join(other[:5])} (class folders: "
                    "0..17 or names like wear_male_under30)")
    if anonymous:
        said.append(f"{anonymous} of {total} image(s) have no person in their name (<person>__<name>.jpg): each is "
                    "its own person, so folds can put one person's images on both sides (a leak)")
    return said


def read_train(root: str | Path, check_images: bool = True, on_bad_image: str = "error") -> pd.DataFrame:
    import logging

    import pandas as pd

    from mask_cls import labels as L
    from mask_cls.data.images import check_image_header

    root = Path(str(root))
    preflight(root, ("train",))
    found, other, anonymous = rows(root)
    if not found:
        raise DataError(f"{root}: no .jpg/.jpeg/.png images in its class folders")
    for message in _warnings(root, other, anonymous, len(found)):
        logging.getLogger("mask_cls").warning("%s: %s", root, message)
    person, image, label = zip(*found)
    m, g, a = L.decode(list(label))
    group_age = {0: 25, 1: 45, 2: L.AGE_OLD_FROM}
    table = pd.DataFrame({"person": person, "id": person, "image": image, "mask": m, "gender": g,
                          "age": [group_age[int(v)] for v in a], "label": label})
    if check_images:
        table = table[[check_image_header(Path(p), on_bad_image) for p in table["image"]]].reset_index(drop=True)
    table.attrs["ages_known"] = False
    return table


def read_eval(root: str | Path, check_images: bool = True, on_bad_image: str = "error") -> None:
    """No eval set: ``task=predict images=FOLDER`` predicts any images."""
    return None


def check(root: str | Path | None, report: Report, progress: Callable[[Iterable, int], Iterable]) -> None:
    from mask_cls.data.doctor import check_image

    root = Path(str(root))
    try:
        preflight(root, ("train",))
    except DataError as e:
        report.error(root, str(e).removeprefix(f"{root}: "))
        return
    found, other, anonymous = rows(root)
    for message in _warnings(root, other, anonymous, len(found)):
        report.warn(root, message)
    report.counts["images listed"] = len(found)
    report.counts["persons"] = len({p for p, _, _ in found})
    for _, image, _ in progress(found, len(found)):
        check_image(Path(image), report)


def copy_tables(root: str | Path, out: Path) -> Path:
    """``task=prepare``: the folders are the table; nothing to copy besides the images."""
    return out
