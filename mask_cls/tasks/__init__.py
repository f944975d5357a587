"""Tasks behind ``task=``: thin functions, config in, files out, registered by name.

A task is one file, ``mask_cls/tasks/<name>.py``, whose function carries ``@register("<name>")``
(plus ``conf/task/<name>.yaml``): nothing else lists the tasks."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig

#: a task: the composed config and its claimed run directory (run.py claims it once) in, files out
TaskFn = Callable[[DictConfig, Path], "float | None"]
REGISTRY: dict[str, TaskFn] = {}
_NOT_TASKS = {"__init__"}


def register(name: str) -> Callable[[TaskFn], TaskFn]:
    def deco(fn: TaskFn) -> TaskFn:
        REGISTRY[name] = fn
        return fn

    return deco


def known() -> list[str]:
    """The task names: the modules of this package."""
    return sorted(p.stem for p in Path(__file__).parent.glob("*.py") if p.stem not in _NOT_TASKS)


def get_task(name: str) -> TaskFn:
    """The task's function; only its own module is imported (``task=evaluate`` and
    ``task=check`` start without Lightning or timm: bench/startup.py)."""
    if name not in _NOT_TASKS and name.isidentifier() and importlib.util.find_spec(f"{__name__}.{name}"):
        importlib.import_module(f"{__name__}.{name}")
    if name not in REGISTRY:
        from mask_cls.errors import ConfigError

        raise ConfigError(f"task={name!r} is unknown (known: {', '.join(known())})")
    return REGISTRY[name]
