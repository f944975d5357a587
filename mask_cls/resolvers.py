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


def cpu_workers(most: int = 4) -> int:
    """DataLoader workers by default: ``most``, or the cores this process may use if fewer (torch
    warns about more workers than cores, and they only compete)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(int(most), cores))


def lite0_weights() -> str:
    from mask_cls.models.weights import lite0_file

    return lite0_file()


def register() -> None:
    for name, fn in (("best_precision", best_precision), ("cwd", cwd), ("study_seed", study_seed),
                     ("lite0_weights", lite0_weights), ("cpu_workers", cpu_workers)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
