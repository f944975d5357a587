"""What every task needs: its run directory, and the refusal to write into another run's."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mask_cls.errors import ConfigError

log = logging.getLogger("mask_cls")
#: files whose presence means a run already wrote into a folder
RESULT_FILES = ("metrics.json", "submission.csv", "checkpoints", "scores.json", "oof.csv", "fold_0", "pseudo.csv")


def run_dir(cfg: DictConfig) -> Path:
    """The Hydra run (or multirun job) directory; ``paths.output_dir`` outside Hydra."""
    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path(cfg.paths.output_dir)


def fresh_run_dir(cfg: DictConfig) -> Path:
    """The run directory, refusing one that already holds an earlier run's results."""
    out = run_dir(cfg)
    if int(os.environ.get("LOCAL_RANK", 0)) > 0 or int(os.environ.get("NODE_RANK", 0)) > 0:
        return out  # a DDP worker process shares the directory its rank-0 process checked
    taken = [n for n in RESULT_FILES if (out / n).exists()]
    if taken:
        raise ConfigError(f"{out}: already holds an earlier run ({', '.join(taken)}); "
                          "choose another hydra.run.dir")
    out.mkdir(parents=True, exist_ok=True)
    return out


def plain(node) -> dict:
    """A resolved plain-Python copy of a config node (for checkpoints and JSON)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)


def in_multirun() -> bool:
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def finish_loggers() -> None:
    """Close the wandb run of this job, if one was started (multirun jobs share a process)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


SECRET_WORDS = ("key", "token", "secret", "password", "passwd")


def loggable_config(cfg: DictConfig) -> dict:
    """The resolved config for loggers, with anything that looks like a secret masked."""

    def clean(node):
        if isinstance(node, dict):
            return {k: ("***" if any(w in str(k).lower() for w in SECRET_WORDS) and v else clean(v))
                    for k, v in node.items()}
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    return clean(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
