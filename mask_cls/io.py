"""Writing results so that nothing is ever half-written: temp file in the same folder, then rename."""

from __future__ import annotations

import json
import os
import re
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


#: a temp file or folder: ``.<name>.<pid of its writer>.<random>.tmp``
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)\.[^.]+\.tmp$")
_swept: set[str] = set()


def temp_prefix(name: str) -> str:
    """The prefix of this process's temp files for ``name`` (suffix ``.tmp``)."""
    return f".{name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def sweep_stale(folder: str | Path) -> None:
    """Remove the temp files (or folders) that a killed process (``kill -9``, power loss) left in
    ``folder``: those whose writer's pid is no longer alive. Once per folder and process."""
    import shutil

    key = os.path.abspath(folder)
    if key in _swept:
        return
    _swept.add(key)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        m = _TEMP.match(e.name)
        if m is None or _alive(int(m["pid"])):
            continue
        try:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                os.unlink(e.path)
        except OSError:
            pass


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp path beside ``path`` and rename it into place.

    A failure inside ``write`` leaves any earlier ``path`` untouched and removes the temp file;
    temp files of killed writers in the folder are removed (:func:`sweep_stale`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp makes 0600; results follow the umask
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


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    return atomic_write(path, lambda p: df.to_csv(p, index=False))


def write_json(obj: Any, path: str | Path) -> Path:
    def _write(p: Path) -> None:
        p.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

    return atomic_write(path, _write)
