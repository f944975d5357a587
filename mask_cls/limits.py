"""Sane bounds of the numbers that size work and memory (image size, batch size, dropout samples,
sub-centres, embedding width, test-time views, the synthetic set, loader processes, and the pixels
of one batch), wherever they come from: the command line, a run's saved recipe or a checkpoint's
config. A value past them is one line naming where it came from, not a 30 GB allocation. Each
bound is accepted exactly at its limit and refused one step past it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mask_cls.errors import ConfigError


def cores() -> int:
    import os

    return max(os.cpu_count() or 1, 1)


#: name -> (lowest, highest) integer
BOUNDS = {"image_size": (8, 4096), "batch_size": (1, 4096), "dropout_samples": (1, 64), "subcenters": (1, 64),
          "neck": (1, 16384), "persons": (0, 100_000), "jpeg_quality": (1, 100), "workers": (0, cores())}
#: at most this many pixels in one batch (H x W x batch size): 512 x 512 x 1024, 3 GB as float32
MAX_BATCH_PIXELS = 2**28
#: at most this many test-time views per image
MAX_TTA = 8
#: where each bound applies in a run config and in a module (checkpoint) config
RUN_KEYS = {"data.image_size": "image_size", "data.batch_size": "batch_size",
            "model.dropout_samples": "dropout_samples", "model.neck": "neck", "head.subcenters": "subcenters",
            "data.num_workers": "workers", "synth.train_persons": "persons", "synth.eval_persons": "persons",
            "synth.image_size": "image_size", "synth.jpeg_quality": "jpeg_quality", "synth.workers": "workers"}
MODULE_KEYS = {"image_size": "image_size", "model.dropout_samples": "dropout_samples", "model.neck": "neck",
               "head.subcenters": "subcenters"}


def bounded(name: str, value: Any, where: str) -> None:
    """``value`` (a number, or each number of a list) is an integer within ``BOUNDS[name]``."""
    lo, hi = BOUNDS[name]
    values = [value] if isinstance(value, str | bytes) or not hasattr(value, "__iter__") else list(value)
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or v != v or v % 1 or not lo <= v <= hi:
            raise ConfigError(f"{where}={value!r}: {name} must be whole numbers from {lo} to {hi}")


def _get(node: Mapping, key: str):
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def check(config: Mapping, keys: Mapping[str, str], source: str = "") -> None:
    """Every bounded key of ``config`` (a mapping or a DictConfig) that is set; ``source`` prefixes the
    message (a checkpoint's path)."""
    for key, name in keys.items():
        value = _get(config, key)
        if value is not None:
            bounded(name, value, f"{source}{key}")


def check_run(cfg: Mapping) -> None:
    """Every bound of a run config (``RUN_KEYS``), the number of test-time views, and the pixels
    of one training batch."""
    check(cfg, RUN_KEYS)
    tta = _get(cfg, "tta")
    if tta is not None and not isinstance(tta, str) and len(list(tta)) > MAX_TTA:
        raise ConfigError(f"tta: {len(list(tta))} views; at most {MAX_TTA}")
    size, batch = _get(cfg, "data.image_size"), _get(cfg, "data.batch_size")
    if size is not None and batch is not None and len(list(size)) == 2:
        h, w = list(size)
        if h * w * batch > MAX_BATCH_PIXELS:
            raise ConfigError(f"data.image_size={[h, w]} x data.batch_size={batch}: {h * w * batch / 1e6:.0f} million "
                              f"pixels in one batch, above {MAX_BATCH_PIXELS / 1e6:.0f} million; use a smaller batch")
