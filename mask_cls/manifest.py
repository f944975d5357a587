"""``manifest.json`` in every run: what produced it, so "what changed between these two runs?"
has an answer beyond the config: the command line, the code (git commit, whether the tree was
dirty and a hash of the diff), the library versions, the machine, and a fingerprint of the
training data (a hash of its table as read, the number of images and their total size).

Written by run.py once the run directory is claimed; the training engine adds the data part
(``data/fingerprint.py``, made when the DataModule reads the table) and logs the whole to every
logger."""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mask_cls.io import write_json
from mask_cls.secrets import mask, mask_text

NAME = "manifest.json"
REPO = Path(__file__).resolve().parents[1]
#: the libraries whose version changes results
LIBRARIES = ("torch", "torchvision", "lightning", "timm", "albumentations", "numpy", "opencv-python-headless")


def code(repo: Path = REPO) -> dict[str, Any]:
    """Git commit of the checkout, whether tracked files differ from it, and a hash of that diff."""
    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.decode("utf-8", "replace") if r.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:  # an installed copy, not a checkout
        return {"commit": None, "dirty": None, "diff_sha256": None}
    diff = git("diff", "HEAD", "--", ".") or ""
    return {"commit": commit.strip(), "dirty": bool(diff),
            "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None}


def versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("mask_cls", *LIBRARIES):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, Any]:
    """The host, without importing torch (run.py writes this before the heavy imports)."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count()}


def accelerator(precision: object = None) -> dict[str, Any]:
    """What training ran on (added by the engine, where torch is loaded)."""
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"gpu": gpu, "gpus": torch.cuda.device_count(), "precision": None if precision is None else str(precision)}


def build(argv: Iterable[str] | None = None) -> dict[str, Any]:
    """Command, code, versions and host (the engine adds the accelerator and the data)."""
    args = list(sys.argv if argv is None else argv)
    command = mask_text(shlex.join(["python", *args]))  # a typed secret (key=...) never reaches a file or logger
    return {"command": command, "code": code(), "versions": versions(), "machine": machine()}


def write(out: Path, manifest: dict[str, Any]) -> Path:
    return write_json(mask(manifest), out / NAME)


def add_training(out: Path, data: dict[str, Any], precision: object = None) -> dict[str, Any]:
    """The run's manifest with what training adds: the data fingerprint and the accelerator (a
    manifest is made here if run.py wrote none, e.g. in a cv run's fold folder)."""
    from mask_cls.errors import ConfigError
    from mask_cls.runfiles import read_json

    path = out / NAME
    try:
        manifest = read_json(path)
    except ConfigError:
        manifest = build()
    if not isinstance(manifest, dict):
        manifest = build()
    manifest["data"] = data
    manifest["machine"] = {**(manifest.get("machine") or {}), **accelerator(precision)}
    write(out, manifest)
    return manifest


def flat(manifest: dict[str, Any], prefix: str = "manifest") -> dict[str, Any]:
    """Dotted keys, for loggers' hyperparameter tables."""
    out: dict[str, Any] = {}
    for k, v in manifest.items():
        key = f"{prefix}/{k}"
        if isinstance(v, dict):
            out |= flat(v, key)
        else:
            out[key] = v
    return out
