"""mask_cls: face-mask / gender / age classification (18 classes) behind one Hydra command line.

From your own code: ``from mask_cls import Predictor`` (``mask_cls/predictor.py``). The names
load on first use, so ``import mask_cls`` stays light (run.py starts within a second).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mask_cls.predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mask_cls import predictor

        return getattr(predictor, name)
    raise AttributeError(f"module 'mask_cls' has no attribute {name!r}")
