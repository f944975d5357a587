"""A Hydra callback (``conf/hydra/default.yaml``): the run or sweep folder is checked before Hydra
creates it or opens its log file, so a path that is a file, lies under a file, or cannot be written
(a read-only disk, no permission) is one line naming it, not Hydra's traceback. A run directory is
ours alone: new or empty, and not a link (a folder that holds anything, a link named ``run.log``
or ``csv`` among it, would have the run write through it); a refused run writes nothing there."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

#: run folders this process created (a refused command removes its own, empty but for Hydra's log)
created: set[Path] = set()


def discard_unclaimed(path: str | Path) -> None:
    """Remove the run folder this process created for a command refused before it claimed it:
    a typo leaves no empty dated folder behind. Only a folder holding nothing but Hydra's log."""
    out = Path(os.path.abspath(str(path)))
    if out not in created or out.is_symlink() or not out.is_dir():
        return
    from mask_cls.rundir import JOB_LOG

    held = os.listdir(out)
    if any(n != JOB_LOG or not (out / n).is_file() or (out / n).is_symlink() for n in held):
        return
    for n in held:
        (out / n).unlink()
    out.rmdir()


def refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def _peer_log(out: Path, name: str) -> bool:
    """Hydra's log of another node of this run: with ``NODE_RANK`` set, every node's process
    opens ``run.log`` in the shared folder, and node 1 may start before node 0 looks."""
    from mask_cls.rundir import JOB_LOG

    multinode = os.environ.get("NODE_RANK", "") != ""
    return multinode and name == JOB_LOG and (out / name).is_file() and not (out / name).is_symlink()


def unclaimed_folder(path: str | Path, key: str) -> None:
    """``path`` is new or an empty real folder; else one ``error:`` line, exit 1. A DDP worker
    process shares the folder its rank 0 claimed."""
    from mask_cls.rundir import is_worker_process

    out = Path(str(path))
    if is_worker_process():
        return
    if out.is_symlink():
        refuse(f"{key}={out}: is a link; a run directory must be a real folder (choose another {key})")
    if out.is_dir():
        held = sorted(n for n in os.listdir(out) if not _peer_log(out, n))
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            refuse(f"{key}={out}: already holds files ({shown}); a run directory must be new or empty: "
                   f"choose another {key}")


def writable_folder(path: str | Path, key: str) -> None:
    """Create ``path`` if needed and prove a file can be written in it; else one ``error:`` line, exit 1."""
    out = Path(str(path))
    unclaimed_folder(out, key)
    if not out.exists():
        created.add(Path(os.path.abspath(out)))
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
    refuse(f"{key}={out}: {reason}; choose another {key}")


def claim_dated(path: str | Path) -> Path:
    """Create ``path``, or ``path_2``, ``path_3``, ... the first that no one else has: the dated
    name of a command started in the same second as another. Each is made with one ``mkdir``,
    which only one process can win."""
    out, n = Path(str(path)), 2
    out.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            out.mkdir()
        except FileExistsError:
            out, n = Path(f"{path}_{n}"), n + 1
            continue
        created.add(Path(os.path.abspath(out)))
        return out


def _typed(config: DictConfig, key: str) -> bool:
    return any(o.lstrip("+~").split("=", 1)[0] == key for o in config.hydra.overrides.hydra)


class OutputFolder(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mask_cls.rundir import is_worker_process

        if not _typed(config, "hydra.run.dir") and not is_worker_process():
            # our dated name: two commands started in one second get two folders
            free = claim_dated(config.hydra.run.dir)
            if str(free) != str(config.hydra.run.dir):
                from omegaconf import read_write

                with read_write(config.hydra.run):
                    config.hydra.run.dir = str(free)
        writable_folder(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not _typed(config, "hydra.sweep.dir"):
            free = claim_dated(config.hydra.sweep.dir)
            if str(free) != str(config.hydra.sweep.dir):
                from omegaconf import read_write

                with read_write(config.hydra.sweep):
                    config.hydra.sweep.dir = str(free)
        writable_folder(config.hydra.sweep.dir, "hydra.sweep.dir")
