"""OmegaConf resolvers used in conf/: registered by run.py before Hydra composes the config."""

from __future__ import annotations

from omegaconf import OmegaConf


def best_precision() -> str:
    """bf16-mixed where the GPU supports it (the fast setting bench/gpu.py measures), else fp32."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def register() -> None:
    if not OmegaConf.has_resolver("best_precision"):
        OmegaConf.register_new_resolver("best_precision", best_precision)
