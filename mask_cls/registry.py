"""Objects built from config nodes by names checked against this project's own lists.

A checkpoint or a saved run config is *data*: its ``_target_`` strings are looked up in the
registries below and its arguments must be plain values (numbers, strings, booleans, lists),
so no file can make the project call ``builtins.open``, ``os.system`` or a pickle loader.
``hydra.utils.instantiate`` is used only on the config the user composed on the command line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from mask_cls.errors import ConfigError

PLAIN = (type(None), bool, int, float, str)


def check_plain(value: Any, where: str) -> None:
    """Numbers, strings, booleans, None, and lists / mappings of them; never a ``_target_``."""
    if isinstance(value, PLAIN):
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, Mapping):
        if "_target_" in value:
            raise ConfigError(f"{where}: a nested _target_ ({value['_target_']!r}) is not allowed here")
        for k, v in value.items():
            check_plain(v, f"{where}.{k}")
        return
    raise ConfigError(f"{where}: {type(value).__name__} is not a plain config value")


class Registry:
    """Named constructors of one kind; ``build`` accepts only these names and plain arguments."""

    def __init__(self, kind: str, entries: Mapping[str, Callable], extra: Callable[[str], Callable | None] | None = None):
        self.kind, self.entries, self.extra = kind, dict(entries), extra

    def lookup(self, target: str) -> Callable:
        fn = self.entries.get(target) or (self.extra(target) if self.extra else None)
        if fn is None:
            raise ConfigError(f"{self.kind}._target_={target!r} is not one of this project's {self.kind} options "
                              f"({', '.join(sorted(self.entries))})")
        return fn

    def kwargs(self, node: Mapping) -> tuple[Callable, dict]:
        if not isinstance(node, Mapping) or not isinstance(node.get("_target_"), str):
            raise ConfigError(f"{self.kind}: expected a config with a _target_, got {type(node).__name__}")
        fn = self.lookup(node["_target_"])
        kwargs = {k: v for k, v in node.items() if k not in ("_target_", "_partial_")}
        check_plain(kwargs, self.kind)
        params = inspect.signature(fn).parameters
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            unknown = [k for k in kwargs if k not in params]
            if unknown:
                raise ConfigError(f"{self.kind}.{unknown[0]}: not an argument of {node['_target_']}")
        return fn, kwargs

    def build(self, node: Mapping, *args, **runtime) -> Any:
        """``target(*args, **plain_arguments, **runtime)``; runtime values come from code, not files."""
        fn, kwargs = self.kwargs(node)
        return fn(*args, **kwargs, **runtime)


def _checked_optimizer(cls: type) -> Callable:
    """The optimiser class with its learning rate checked first (NaN, infinite or <= 0 is a
    one-line config error, not torch's traceback)."""
    import math

    def build(params, lr: float = 1e-3, **kwargs):
        if not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
            raise ConfigError(f"optim.lr={lr}: must be a positive finite number")
        try:
            return cls(params, lr=lr, **kwargs)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"optim ({cls.__name__}): {e}") from None

    build.__signature__ = inspect.signature(cls)  # argument names checked as the class's own
    return build


def _torch_optimizer(target: str) -> Callable | None:
    """Any optimiser class of ``torch.optim`` by its public name (``torch.optim.AdamW``)."""
    import torch

    prefix = "torch.optim."
    name = target[len(prefix):] if target.startswith(prefix) else ""
    obj = getattr(torch.optim, name, None) if name.isidentifier() else None
    return _checked_optimizer(obj) if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) else None


def subclass_in(package: str, base: type) -> Callable[[str], type | None]:
    """A lookup of ``<package>.<module>.<Class>`` that only imports a module of ``package``
    (one of this project's files) and only returns a subclass of ``base``: a new loss or head is
    its file and its config, with no list to extend, and a file's ``_target_`` reaches nothing else."""
    import importlib
    import importlib.util

    def lookup(target: str) -> type | None:
        module, _, name = target.rpartition(".")
        if not module.startswith(package + ".") or not all(p.isidentifier() for p in target.split(".")):
            return None
        try:
            if importlib.util.find_spec(module) is None:
                return None
        except (ImportError, ValueError):  # a parent that is a module, not a package
            return None
        obj = getattr(importlib.import_module(module), name, None)
        return obj if inspect.isclass(obj) and issubclass(obj, base) and obj is not base else None

    return lookup


def heads() -> Registry:
    from mask_cls.models import heads as h

    return Registry("head", {f"mask_cls.models.heads.{c.__name__}": c for c in h.HEADS},
                    extra=subclass_in("mask_cls.models.heads", h.Head))


def losses() -> Registry:
    from mask_cls.losses.base import Criterion
    from mask_cls.losses.ce import CrossEntropy
    from mask_cls.losses.focal import FocalLoss
    from mask_cls.losses.smoothing import SmoothingCrossEntropy

    known = {f"{c.__module__}.{c.__name__}": c for c in (CrossEntropy, FocalLoss, SmoothingCrossEntropy)}
    return Registry("loss", known, extra=subclass_in("mask_cls.losses", Criterion))


def optimizers() -> Registry:
    import torch

    return Registry("optim", {"torch.optim.AdamW": _checked_optimizer(torch.optim.AdamW),
                              "torch.optim.SGD": _checked_optimizer(torch.optim.SGD)}, extra=_torch_optimizer)


def schedulers() -> Registry:
    from mask_cls import optim as o

    return Registry("sched", {f"mask_cls.optim.{f.__name__}": f for f in (o.cosine, o.onecycle, o.plateau, o.constant)})
