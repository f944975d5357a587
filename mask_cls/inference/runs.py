"""Find the checkpoints of earlier runs: a train run, a cv run (one per fold), or a .ckpt file."""

from __future__ import annotations

import json
from pathlib import Path

from mask_cls.errors import ConfigError


def best_checkpoint(run: Path) -> Path:
    metrics = json.loads((run / "metrics.json").read_text())
    best = metrics.get("best_checkpoint") or str(run / "checkpoints" / "last.ckpt")
    path = Path(best)
    if not path.is_file():
        raise ConfigError(f"{run}: checkpoint {path} not found")
    return path


def run_checkpoints(target: str | Path) -> list[Path]:
    """The best checkpoint of every model in ``target`` (in fold order for a cv run)."""
    t = Path(target)
    if t.is_file() and t.suffix == ".ckpt":
        return [t]
    if (t / "metrics.json").is_file():
        return [best_checkpoint(t)]
    folds = sorted((p for p in t.glob("fold_*") if (p / "metrics.json").is_file()),
                   key=lambda p: int(p.name.split("_")[1]))
    if folds:
        return [best_checkpoint(p) for p in folds]
    raise ConfigError(f"run_dir={target}: no train run (metrics.json), cv run (fold_*/) or .ckpt file there")
