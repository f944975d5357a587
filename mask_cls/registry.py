"""Objects built from config nodes by names checked against this project's own lists.

This file holds the mechanism and imports nothing of the project above ``errors``: each plugin
package builds and owns its registry (``models.heads.registry``, ``losses.registry``,
``optimizers.registry``, ``lr_schedules.registry``). A checkpoint or a saved run config is
*data*: its ``_target_`` strings are looked up in those registries and its arguments must be plain values (numbers, strings, booleans, lists),
so no file can make the project call ``builtins.open``, ``os.system`` or a pickle loader.
``hydra.utils.instantiate`` is used only on the config the user composed on the command line.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mask_cls.errors import ConfigError

T = TypeVar("T")

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


def scan(package: str, base: type[T]) -> dict[str, type[T]]:
    """Every subclass of ``base`` defined in a module of ``package``, by ``<module>.<Class>``: the
    known names come from the files themselves, so a new plugin is listed in every error message."""
    import importlib
    import pkgutil

    found: dict[str, type[T]] = {}
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__, package + "."):
        for name, obj in vars(importlib.import_module(info.name)).items():
            if (inspect.isclass(obj) and issubclass(obj, base) and obj is not base and obj.__module__ == info.name
                    and not name.startswith("_")):
                found[f"{info.name}.{name}"] = obj
    return found


def functions_of(module: str) -> dict[str, Callable]:
    """The public functions defined in ``module``, by ``<module>.<function>``."""
    import importlib

    mod = importlib.import_module(module)
    return {f"{module}.{n}": f for n, f in vars(mod).items()
            if inspect.isfunction(f) and f.__module__ == module and not n.startswith("_")}
