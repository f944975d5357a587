"""Tasks behind ``task=``: thin functions, config in, files out, registered by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from omegaconf import DictConfig

TaskFn = Callable[[DictConfig], "float | None"]
TASKS: dict[str, TaskFn] = {}
_MODULES = ("synth", "check", "train", "cv", "predict", "pseudo", "evaluate", "prepare", "preview")


def register(name: str) -> Callable[[TaskFn], TaskFn]:
    def deco(fn: TaskFn) -> TaskFn:
        TASKS[name] = fn
        return fn

    return deco


def get_task(name: str) -> TaskFn:
    """The task's function; only its own module is imported (``task=evaluate`` and
    ``task=check`` start without Lightning or timm: bench/startup.py)."""
    if name in _MODULES:
        importlib.import_module(f"mask_cls.tasks.{name}")
    if name not in TASKS:
        from mask_cls.errors import ConfigError

        raise ConfigError(f"task={name!r} is unknown (known: {', '.join(sorted(TASKS))})")
    return TASKS[name]
