"""Unlabeled images for pseudo-labels and UDA: the eval set's, or every image under a folder.

``source``: ``eval`` (the layout's eval images, in their order) or a folder,
searched recursively: any sub-folders, .jpg/.jpeg/.png in any case, hidden files and folders
(``._x``, ``.DS_Store``, ``.ipynb_checkpoints``) skipped, in sorted path order.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mask_cls.data import layouts
from mask_cls.data.images import IMAGE_EXTENSIONS, is_hidden
from mask_cls.errors import DataError

log = logging.getLogger("mask_cls")


def images_under(folder: Path, within: Path | None = None) -> list[Path]:
    """Every .jpg/.jpeg/.png under ``folder`` (any sub-folders), sorted; hidden files and folders
    skipped, links out of ``within`` (default: the folder itself) not followed, and a name that is
    not UTF-8 (no CSV or log could hold it as it is) skipped, counted in one warning."""
    from mask_cls.data.images import shown, utf8_name

    real = (within or folder).resolve()
    found = [p for p in sorted(folder.rglob("*"))
             if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
             and not any(is_hidden(part) for part in p.relative_to(folder).parts)
             and p.resolve().is_relative_to(real)]
    odd = [p for p in found if not utf8_name(p)]
    if odd:
        log.warning("%s: %d image(s) whose names are not UTF-8 skipped (first: %s); rename them to use them",
                    folder, len(odd), shown(odd[0]))
    return [p for p in found if utf8_name(p)]


def folder_images(folder: str | Path) -> list[str]:
    """Every image under ``folder`` (:func:`images_under`), as strings; none is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: unlabeled folder not found")
    found = [str(p) for p in images_under(folder)]
    if not found:
        raise DataError(f"{folder}: no .jpg/.jpeg/.png images in it or its sub-folders")
    return found


def unlabeled_images(source: str, layout: layouts.Layout) -> list[str]:
    """The image paths of ``source`` (``eval``: the layout's eval set, or a folder) as strings."""
    if str(source) == "eval":
        info = layout.read_eval()
        if info is None:
            raise DataError(f"{layout.options.get('csv') or Path(str(layout.root)) / 'eval' / 'info.csv'}: unlabeled=eval, but there "
                            "is no eval set (give unlabeled=FOLDER)")
        return list(info["image"])
    return folder_images(source)
