"""Writing results so that nothing is ever half-written: temp file in the same folder, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas loads only where a CSV is written (fast start of the light tasks)
    import pandas as pd

from mask_cls.errors import DataError


def inside(root: str | Path, rel: str, where: str) -> Path:
    """``root / rel``, refused (one line naming ``where``) unless it stays inside ``root``
    once ``..`` and links are resolved: every path read from a file goes through here."""
    root = Path(root)
    if not rel or Path(rel).is_absolute():
        raise DataError(f"{where}: path {rel!r} must be relative to {root}")
    path = root / rel
    if not path.resolve().is_relative_to(root.resolve()):
        raise DataError(f"{where}: path {rel!r} leaves {root} (through '..' or a link)")
    return path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp path beside ``path`` and rename it into place.

    A failure inside ``write`` leaves any earlier ``path`` untouched and removes the temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; results follow the umask
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        if e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, str(path)) from None  # name the result, not the temp file
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def write_json(obj: Any, path: str | Path) -> Path:
    def _write(p: Path) -> None:
        p.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

    return atomic_write(path, _write)
