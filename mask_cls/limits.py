"""Sane bounds of the numbers that size work and memory (image size, batch size, dropout samples,
sub-centres, embedding width), wherever they come from: the command line, a run's saved recipe
or a checkpoint's config. A value past them is one line naming where it came from, not a 30 GB
allocation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mask_cls.errors import ConfigError

#: name -> (lowest, highest) integer
BOUNDS = {"image_size": (8, 4096), "batch_size": (1, 4096), "dropout_samples": (1, 64), "subcenters": (1, 64),
          "neck": (1, 16384)}
#: where each bound applies in a run config and in a module (checkpoint) config
RUN_KEYS = {"data.image_size": "image_size", "data.batch_size": "batch_size",
            "model.dropout_samples": "dropout_samples", "model.neck": "neck", "head.subcenters": "subcenters"}
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
