"""Loggers of ``conf/logger`` that need a word more than Lightning's own."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger


class WandbLogger(_LightningWandbLogger):
    """Lightning's ``WandbLogger`` without the ``anonymous`` argument it always passes to
    ``wandb.init`` (``None`` unless asked for): current wandb prints a warning about that setting
    on every run, which nobody using this project can act on."""

    def __init__(self, *args: Any, anonymous: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, anonymous=anonymous, **kwargs)  # type: ignore[misc]  # (*args: its positionals)
        if not anonymous:
            self._wandb_init.pop("anonymous", None)
