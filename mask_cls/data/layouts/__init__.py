"""Dataset layouts behind one seam: ``read_train(layout, root, ...)`` -> the image table that
folds, samplers, relabels, pseudo rows and the DataModule use: one row per image with
``person, id, image`` (absolute path), ``mask, gender, age, label``.

A new layout is one file here (a ``read_train(root, check_images, on_bad_image, **options)``)
plus one entry in ``READERS`` and one ``conf/data/<name>.yaml`` with ``layout: <name>``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd

from mask_cls.errors import ConfigError

#: layout name -> module holding its ``read_train``
READERS = {"competition": "mask_cls.data.layout", "table": "mask_cls.data.layouts.table"}
COLUMNS = ("person", "id", "image", "mask", "gender", "age", "label")


def read_train(layout: str, root: str | Path, check_images: bool = True, on_bad_image: str = "error",
               **options) -> pd.DataFrame:
    if layout not in READERS:
        raise ConfigError(f"data.layout={layout!r} is unknown (known: {', '.join(READERS)})")
    table = importlib.import_module(READERS[layout]).read_train(root, check_images=check_images,
                                                                on_bad_image=on_bad_image, **options)
    missing = [c for c in COLUMNS if c not in table.columns]
    assert not missing, f"layout {layout} gave no column(s) {missing}"  # a reader's bug, not the user's
    return table
