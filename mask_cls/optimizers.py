"""Optimisers (``optim=adamw|sgd``): any ``torch.optim`` class by its public name, its learning
rate checked first."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from mask_cls.errors import ConfigError
from mask_cls.registry import Registry


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

    build.__signature__ = inspect.signature(cls)  # type: ignore[attr-defined]  # argument names checked as the class's own
    return build


def _torch_optimizer(target: str) -> Callable | None:
    """Any optimiser class of ``torch.optim`` by its public name (``torch.optim.AdamW``)."""
    import torch

    prefix = "torch.optim."
    name = target[len(prefix):] if target.startswith(prefix) else ""
    obj = getattr(torch.optim, name, None) if name.isidentifier() else None
    return _checked_optimizer(obj) if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer) else None


def registry() -> Registry:
    import torch

    return Registry("optim", {"torch.optim.AdamW": _checked_optimizer(torch.optim.AdamW),
                              "torch.optim.SGD": _checked_optimizer(torch.optim.SGD)}, extra=_torch_optimizer)
