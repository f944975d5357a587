"""Dataset layouts behind one seam. Each layout is one module with four functions:

- ``read_train(root, check_images, on_bad_image, **options)``: the image table that folds,
  samplers, relabels, pseudo rows and the DataModule use, one row per image with
  ``person, id, image`` (absolute path), ``mask, gender, age, label``;
- ``read_eval(root, check_images, on_bad_image, **options)``: the eval images to predict
  (``ImageID, image``), or None when the layout has none (then ``images=FOLDER``);
- ``check(root, report, progress, **options)``: every problem, for ``task=check``;
- ``copy_tables(root, out, **options)``: ``task=prepare``, the tables beside copied images;
- ``preflight(root, needs, **options)`` (optional): what can be checked before pandas, torch or
  timm load (the root, the tables that ``needs`` reads and their columns), so a wrong path is
  one line within a second; it imports nothing heavy, nor does the module's top.

A new layout is that module (found by its file name; ``OPTIONS`` names the ``data.*`` keys it
takes besides ``root``, e.g. ``csv``; an optional ``default_root(**options)`` gives the root when
``data.root`` is unset) and one ``conf/data/<name>.yaml`` with ``layout: <name>``. ``check``
reports a missing root or file of its own as a finding."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mask_cls.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("person", "id", "image", "mask", "gender", "age", "label")


@functools.cache
def known() -> tuple[str, ...]:
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")))


def module(name: str) -> ModuleType:
    if not isinstance(name, str) or not name.isidentifier() or name not in known():
        raise ConfigError(f"data.layout={name!r} is unknown (known: {', '.join(known())})")
    return importlib.import_module(f"{__name__}.{name}")


def options(data: Mapping[str, Any]) -> tuple[str, Any, dict]:
    """(layout name, root, the layout's own options) of a ``data`` config; the root is
    ``data.root``, else the layout's ``default_root`` of its options (a table: its CSV's folder)."""
    name = data.get("layout", "competition")
    mod = module(name)
    opts = {k: data[k] for k in getattr(mod, "OPTIONS", ()) if data.get(k) is not None}
    root = data.get("root")
    if root is None and hasattr(mod, "default_root"):
        root = mod.default_root(**opts)
    return name, root, opts


def read_train(layout: str, root: str | Path, check_images: bool = True, on_bad_image: str = "error",
               **opts) -> pd.DataFrame:
    table = module(layout).read_train(root, check_images=check_images, on_bad_image=on_bad_image, **opts)
    missing = [c for c in COLUMNS if c not in table.columns]
    assert not missing, f"layout {layout} gave no column(s) {missing}"  # a reader's bug, not the user's
    return table


def read_eval(layout: str, root: str | Path, check_images: bool = True, on_bad_image: str = "error", **opts):
    return module(layout).read_eval(root, check_images=check_images, on_bad_image=on_bad_image, **opts)


def preflight(layout: str, root: str | Path | None, needs: Iterable[str], **opts) -> None:
    check_fn = getattr(module(layout), "preflight", None)
    if check_fn is not None:
        check_fn(root, needs, **opts)


def check(layout: str, root: str | Path, report, progress: Callable[[Iterable, int], Iterable], **opts) -> None:
    module(layout).check(root, report, progress, **opts)


def copy_tables(layout: str, root: str | Path, out: Path, **opts) -> Path:
    return module(layout).copy_tables(root, out, **opts)
