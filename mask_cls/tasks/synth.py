"""``task=synth``: draw the synthetic dataset (competition layout) into ``data.root``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mask_cls.data.synthetic import SynthConfig, generate
from mask_cls.errors import ConfigError
from mask_cls.rundir import log, plain
from mask_cls.tasks import register


@register("synth")
def synth(cfg: DictConfig, out: Path) -> None:
    root = Path(cfg.data.root)
    if root.exists():
        raise ConfigError(f"{root}: already exists; delete it or pass another data.root")
    params = plain(cfg.synth)
    params["image_size"] = tuple(params["image_size"])
    generate(root, SynthConfig(**params))
    log.info("synthetic dataset written to %s (answer key: %s)", root, root / "eval_answers.csv")
