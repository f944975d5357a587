"""UDA's settings (``ssl=uda``), checked once, and what they give at a point of training."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mask_cls.errors import ConfigError
from mask_cls.ssl.schedules import RAMPS, TSA, tsa_threshold


@dataclass(frozen=True)
class UDA:
    unsup_ratio: int = 3        # unlabeled images per labeled one in a step
    beta: float = 0.8           # confidence (max weak-view probability, before sharpening) to count
    tau: float = 0.4            # sharpening temperature of the weak-view target
    lam: float = 1.0            # weight of the consistency loss (``lambda`` in the config)
    ramp: str = "constant"      # constant | linear | gradual
    ramp_length: float = 1.0    # linear: share of training over which the weight grows to lambda
    tsa: str = "none"           # none | linear | log | exp

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> UDA | None:
        """None for ``ssl=none``; a ConfigError naming the key for a bad value."""
        if not cfg or cfg.get("name", "none") == "none":
            return None
        if cfg.get("name") != "uda":
            raise ConfigError(f"ssl.name={cfg.get('name')!r}: choose none or uda")
        uda = cls(unsup_ratio=int(cfg.get("unsup_ratio", 3)), beta=float(cfg.get("beta", 0.8)),
                  tau=float(cfg.get("tau", 0.4)), lam=float(cfg.get("lambda", 1.0)),
                  ramp=str(cfg.get("ramp", "constant")), ramp_length=float(cfg.get("ramp_length", 1.0)),
                  tsa=str(cfg.get("tsa", "none")))
        checks = {
            "unsup_ratio": (uda.unsup_ratio >= 1, "must be 1 or more"),
            "beta": (0 <= uda.beta < 1, "must be in [0, 1)"),
            "tau": (uda.tau > 0, "must be > 0 (1 = no sharpening)"),
            "lambda": (uda.lam >= 0, "must be >= 0"),
            "ramp": (uda.ramp in RAMPS, f"choose {', '.join(RAMPS)}"),
            "ramp_length": (0 < uda.ramp_length <= 1, "must be in (0, 1]"),
            "tsa": (uda.tsa in ("none", *TSA), f"choose none, {', '.join(TSA)}"),
        }
        for key, (ok, why) in checks.items():
            if not ok:
                raise ConfigError(f"ssl.{key}={cfg.get(key)!r}: {why}")
        return uda

    def weight(self, t: float, epoch: int, max_epochs: int) -> float:
        """lambda times the ramp at progress ``t`` (and epoch, for the gradual ramp)."""
        return self.lam * RAMPS[self.ramp](t, epoch, max_epochs, self.ramp_length)

    def threshold(self, t: float, k: int) -> float | None:
        return tsa_threshold(self.tsa, t, k)
