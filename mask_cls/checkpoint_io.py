"""Checkpoints in one place. Saving: to a temp file, then renamed (a run killed while saving keeps
its previous ``last.ckpt`` whole, loadable and resumable). Loading: safe unpickling, and the
saved config read as data before a model is built from it."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from mask_cls import registry
from mask_cls.errors import ConfigError
from mask_cls.io import atomic_write

if TYPE_CHECKING:
    from mask_cls.module import MaskClassifier


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        save = super().save_checkpoint
        atomic_write(path, lambda tmp: save(checkpoint, tmp, storage_options))


def read_checkpoint(path: str, map_location: str = "cpu", allow_unsafe: bool = False) -> dict:
    """``torch.load`` with ``weights_only=True``: tensors and plain values only, no code runs.

    A checkpoint that needs arbitrary unpickling is refused unless ``allow_unsafe`` (the user
    trusts its source and said ``allow_unsafe_checkpoint=true``).
    """
    if not Path(path).is_file():
        raise ConfigError(f"{path}: checkpoint not found")
    if Path(path).stat().st_size == 0:
        raise ConfigError(f"{path}: not a readable checkpoint (empty file)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if not allow_unsafe:
            first = str(e).strip().splitlines()[0][:120]
            raise ConfigError(f"{path}: refused, the checkpoint needs arbitrary unpickling, which can run code "
                              f"({first}); pass allow_unsafe_checkpoint=true only if you trust it") from None
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # any other failure of the unpickler on a damaged or foreign file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise ConfigError(f"{path}: not a readable checkpoint ({first})") from None


def load_checkpoint(path: str, map_location: str = "cpu", allow_unsafe: bool = False) -> MaskClassifier:
    """Rebuild a module from a checkpoint alone (its saved config), with safe unpickling."""
    from mask_cls.module import MaskClassifier

    ckpt = read_checkpoint(path, map_location, allow_unsafe)
    if "hyper_parameters" not in ckpt or "config" not in ckpt.get("hyper_parameters", {}):
        raise ConfigError(f"{path}: not a mask_cls checkpoint (no saved config)")
    config = ckpt["hyper_parameters"]["config"]
    if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
        raise ConfigError(f"{path}: not a mask_cls checkpoint (its saved config has no model)")
    config = dict(config)
    # the weights come from the checkpoint: never fetch or read pretrained ones again; a
    # checkpoint never chooses a compiler either
    config["model"] = {**config["model"], "pretrained": False, "weights": None}
    config["engine"] = {**(config.get("engine") or {}), "compile": False}
    # the UDA views are training-only augmentation lists: a loaded model never needs them
    config["ssl"] = {k: v for k, v in (config.get("ssl") or {"name": "none"}).items() if k not in ("weak", "strong")}
    try:  # the saved config is data: plain values, and targets only from the project's registries
        for key in ("model", "normalize", "image_size", "augment_batch", "engine", "ssl", "class_counts", "finetune"):
            registry.check_plain(config.get(key), key)
        # head and loss are built through their registries below; optimiser and schedule are
        # only built by a fit, so they are checked here
        registry.optimizers().kwargs(config["optim"])
        registry.schedulers().kwargs(config["sched"])
        module = MaskClassifier(config)
    except ConfigError as e:
        raise ConfigError(f"{path}: refused, its saved config is not a plain mask_cls model config ({e})") from None
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{path}: its saved config does not describe a model ({type(e).__name__}: {e})") from None
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise ConfigError(f"{path}: does not match the model it describes ({str(e).splitlines()[0][:160]})") from None
    return module.eval()
