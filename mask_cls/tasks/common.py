"""What every task needs: its run directory, and the refusal to write into another run's."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mask_cls.errors import ConfigError

log = logging.getLogger("mask_cls")
#: files whose presence means a run already wrote into a folder
RESULT_FILES = ("metrics.json", "submission.csv", "checkpoints", "scores.json", "oof.csv", "fold_0")


def run_dir(cfg: DictConfig) -> Path:
    """The Hydra run (or multirun job) directory; ``paths.output_dir`` outside Hydra."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def fresh_run_dir(cfg: DictConfig) -> Path:
    """The run directory, refusing one that already holds an earlier run's results."""
    out = run_dir(cfg)
    taken = [n for n in RESULT_FILES if (out / n).exists()]
    if taken:
        raise ConfigError(f"{out}: already holds an earlier run ({', '.join(taken)}); "
                          "choose another hydra.run.dir")
    out.mkdir(parents=True, exist_ok=True)
    return out


def plain(node) -> dict:
    """A resolved plain-Python copy of a config node (for checkpoints and JSON)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
