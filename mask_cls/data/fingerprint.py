"""A fingerprint of a training table as read: two runs with the same fingerprint trained on the
same images with the same labels and persons (``manifest.json``'s ``data``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd


def data_fingerprint(table: pd.DataFrame, root: str | Path) -> dict[str, Any]:
    """Of the training table as read: a hash of its rows (image path relative to ``root``, person,
    label, sorted), the number of images and their total size in bytes."""
    root = Path(root).resolve()
    rows = []
    size = 0
    for image, person, label in zip(table["image"], table["person"], table["label"]):
        path = Path(image)
        try:
            rel = str(path.resolve().relative_to(root))
        except ValueError:
            rel = str(path)
        rows.append(f"{rel}\t{person}\t{int(label)}")
        try:
            size += path.stat().st_size
        except OSError:
            pass
    digest = hashlib.sha256("\n".join(sorted(rows)).encode()).hexdigest()
    return {"train_table_sha256": digest, "images": len(rows), "bytes": size,
            "persons": int(table["person"].nunique())}
