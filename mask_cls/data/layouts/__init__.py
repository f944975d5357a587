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
reports a missing root or file of its own as a finding.

Callers never pass a ``(name, root, options)`` triple around: ``open(cfg.data)`` gives one
``Layout`` (its root resolved once, the synthetic default drawn once when asked, the eval
table read once) whose methods call the module's functions."""

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


class Layout:
    """One dataset as its layout reads it: the layout's name, the root, its own ``data.*`` options
    and how unreadable images are treated. (A plain class, not a dataclass: Hydra would turn a
    dataclass given to ``instantiate`` into a config node.)"""

    def __init__(self, name: str, root: Path | None, options: dict | None = None, check_images: bool = True,
                 on_bad_image: str = "error"):
        self.name, self.root, self.options = name, root, dict(options or {})
        self.check_images, self.on_bad_image = check_images, on_bad_image
        self._eval: dict[bool, Any] = {}

    def __repr__(self) -> str:
        return f"Layout({self.name!r}, {str(self.root)!r}, {self.options!r})"

    @property
    def module(self) -> ModuleType:
        return module(self.name)

    def read_train(self, check_images: bool | None = None) -> pd.DataFrame:
        """The image table (``COLUMNS``), images checked unless ``check_images`` is False."""
        checked = self.check_images if check_images is None else check_images
        table = self.module.read_train(self.root, check_images=checked, on_bad_image=self.on_bad_image, **self.options)
        missing = [c for c in COLUMNS if c not in table.columns]
        assert not missing, f"layout {self.name} gave no column(s) {missing}"  # a reader's bug, not the user's
        return table

    def read_eval(self, check_images: bool | None = None) -> pd.DataFrame | None:
        """The eval images (``ImageID, image``), or None; read once per way of checking."""
        checked = self.check_images if check_images is None else check_images
        if checked not in self._eval:
            self._eval[checked] = self.module.read_eval(self.root, check_images=checked,
                                                        on_bad_image=self.on_bad_image, **self.options)
        table = self._eval[checked]
        return None if table is None else table.copy()

    def preflight(self, needs: Iterable[str]) -> None:
        check_fn = getattr(self.module, "preflight", None)
        if check_fn is not None:
            check_fn(self.root, needs, **self.options)

    def check(self, report, progress: Callable[[Iterable, int], Iterable]) -> None:
        self.module.check(self.root, report, progress, **self.options)

    def copy_tables(self, out: Path) -> Path:
        return self.module.copy_tables(self.root, out, **self.options)


def open(data: Mapping[str, Any], synth: bool = False) -> Layout:  # noqa: A001 - the seam's verb
    """The ``Layout`` of a ``data`` config. ``synth=True``: when the config names the synthetic
    default (``data.synth``), draw it at the root first if it is not there yet."""
    name, root, opts = options(data)
    if synth and data.get("synth") is not None:
        from mask_cls.data.synthetic import ensure

        synth_cfg = data["synth"]
        if hasattr(synth_cfg, "items") and not isinstance(synth_cfg, dict):
            from omegaconf import OmegaConf

            synth_cfg = OmegaConf.to_container(synth_cfg, resolve=True)
        ensure(root, synth_cfg)
    return Layout(name, None if root is None else Path(str(root)), opts, bool(data.get("check_images", True)),
                  str(data.get("on_bad_image", "error")))
