"""Weights without pickle: one ``safetensors`` file per model and ``export.json`` (each model's
``ModuleConfig``, its weight in the average, the TTA views, the input size), read back as data."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch

from mask_cls.errors import ConfigError, DataError
from mask_cls.io import atomic_write, write_json
from mask_cls.runfiles import read_json

MANIFEST = "export.json"


def _save_model(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_model

    save_model(module, str(path))


def save(modules: Sequence, weights: Sequence[float], tta: Sequence[str], out: Path, extra: dict) -> list[str]:
    """``weights_<k>.safetensors`` per model and the manifest; the file names, in model order."""
    names = []
    for k, m in enumerate(modules):
        name = f"weights_{k}.safetensors"
        atomic_write(out / name, partial(_save_model, m))
        names.append(name)
    reserved = {"models", "tta", "image_size"} & set(extra)
    if reserved:
        raise ValueError(f"export manifest: {sorted(reserved)} are its own keys")
    write_json({"models": [{"file": n, "config": m.config.as_dict(), "weight": float(w),
                            "temperatures": m.net.temperature.tolist() if m.net.calibrated else None}
                           for n, m, w in zip(names, modules, weights)],
                "tta": list(tta), "image_size": list(modules[0].config.image_size), **extra}, out / MANIFEST)
    return names


def load(folder: str | Path) -> tuple[list, list[float], list[str]]:
    """(modules, weights, tta) of an export folder; configs checked as a checkpoint's are, a
    file name never leads out of the folder."""
    from safetensors.torch import load_model

    from mask_cls.io import inside
    from mask_cls.models.weights import check_finite, check_regular
    from mask_cls.module import MaskClassifier
    from mask_cls.module_config import ModuleConfig

    folder = Path(folder)
    where = folder / MANIFEST
    try:
        manifest = read_json(where)
        entries, tta = manifest["models"], manifest["tta"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{where}: not a readable export manifest ({type(e).__name__})") from None
    modules, weights = [], []
    for entry in entries:
        try:
            module = MaskClassifier(ModuleConfig.from_checkpoint(entry["config"]))
            file = inside(folder, str(entry["file"]), str(where))
            check_regular(file, "weights")  # a FIFO would hang the reader
            load_model(module, str(file), strict=True)
            check_finite(module.net.state_dict(), str(file))  # the network (metric states may be -inf)
            if entry.get("temperatures") is not None:  # the calibration the exported graph applies
                module.net.set_temperatures([float(t) for t in entry["temperatures"]])
        except (ConfigError, DataError, KeyError, TypeError, ValueError, RuntimeError, OSError) as err:
            raise ConfigError(f"{where}: model {entry.get('file') if isinstance(entry, dict) else entry!r} refused "
                              f"({str(err).splitlines()[0][:160]})") from None
        modules.append(module.eval())
        weight = float(entry["weight"])
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"{where}: model weight {weight} must be a finite number >= 0")
        weights.append(weight)
    if not (isinstance(tta, list) and all(isinstance(v, str) for v in tta)):
        raise ConfigError(f"{where}: tta is not a list of view names")
    return modules, weights, tta
