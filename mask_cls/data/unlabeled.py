"""Unlabeled images for pseudo-labels and UDA: the eval set's, or every image under a folder.

``source``: ``eval`` (the images listed in ROOT/eval/info.csv, in its order) or a folder,
searched recursively: any sub-folders, .jpg/.jpeg/.png in any case, hidden files and folders
(``._x``, ``.DS_Store``, ``.ipynb_checkpoints``) skipped, in sorted path order.
"""

from __future__ import annotations

from pathlib import Path

from mask_cls.data import layout
from mask_cls.errors import DataError


def folder_images(folder: str | Path) -> list[str]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: unlabeled folder not found")
    real = folder.resolve()
    found = [str(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.suffix.lower() in layout.IMAGE_EXTENSIONS
             and not any(layout.is_hidden(part) for part in p.relative_to(folder).parts)
             and p.resolve().is_relative_to(real)]  # links out of the folder are not followed
    if not found:
        raise DataError(f"{folder}: no .jpg/.jpeg/.png images in it or its sub-folders")
    return found


def unlabeled_images(source: str, root: str | Path, check_images: bool = True,
                     on_bad_image: str = "error") -> list[str]:
    """The image paths of ``source`` (``eval`` or a folder) as strings."""
    if str(source) == "eval":
        if not layout.has_eval(root):
            raise DataError(f"{Path(root) / 'eval' / 'info.csv'}: unlabeled=eval, but there is no eval set")
        return list(layout.read_eval(root, check_images=check_images, on_bad_image=on_bad_image)["image"])
    return folder_images(source)
