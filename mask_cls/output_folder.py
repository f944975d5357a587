"""A Hydra callback (``conf/hydra/default.yaml``): the run or sweep folder is checked before Hydra
creates it, so a path that is a file, lies under a file, or cannot be written (a read-only disk,
no permission) is one line naming it, not Hydra's traceback."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def writable_folder(path: str | Path, key: str) -> None:
    """Create ``path`` if needed and prove a file can be written in it; else one ``error:`` line, exit 1."""
    out = Path(str(path))
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=out)
        os.close(fd)
        os.unlink(probe)
        return
    except FileExistsError:
        reason = "is a file, not a folder"
    except NotADirectoryError:
        reason = "a part of it is a file, not a folder"
    except OSError as e:
        reason = f"cannot be written ({e.strerror or type(e).__name__})"
    print(f"error: {key}={out}: {reason}; choose another {key}", file=sys.stderr)
    sys.exit(1)


class OutputFolder(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        writable_folder(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        writable_folder(config.hydra.sweep.dir, "hydra.sweep.dir")
