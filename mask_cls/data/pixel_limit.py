"""``data.max_image_pixels``: the largest image any reader accepts (decompression bombs).

Kept in the environment so DataLoader workers and spawned processes inherit it; its own
module, free of OpenCV, because run.py sets it before every task, the light ones included."""

from __future__ import annotations

import os

DEFAULT_MAX_PIXELS = 50_000_000
_ENV = "MASK_CLS_MAX_IMAGE_PIXELS"  # inherited by DataLoader workers and spawned processes


def set_max_pixels(limit: int | None) -> None:
    """``data.max_image_pixels`` for this process and the processes it starts."""
    if limit is not None:
        if int(limit) <= 0:
            from mask_cls.errors import ConfigError

            raise ConfigError(f"data.max_image_pixels={limit}: must be a positive number of pixels")
        os.environ[_ENV] = str(int(limit))


def max_pixels() -> int:
    return int(os.environ.get(_ENV, DEFAULT_MAX_PIXELS))
