"""Find the checkpoints of earlier runs: a train run, a cv run (one per fold), or a .ckpt file."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mask_cls.errors import ConfigError
from mask_cls.runfiles import read_json

if TYPE_CHECKING:  # run_checkpoints runs in the first second (preflight), before numpy loads
    import numpy as np

log = logging.getLogger("mask_cls")


def best_checkpoint(run: Path) -> Path:
    """The run's best checkpoint: the file that ``metrics.json`` names, looked up by its name in
    the run's own ``checkpoints/`` (a moved or shared run still works; a path in the file never
    leads out of the run), else ``checkpoints/last.ckpt``."""
    from mask_cls.errors import DataError
    from mask_cls.io import inside

    where = run / "metrics.json"
    try:
        metrics = read_json(where)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{where}: not a readable metrics file ({type(e).__name__})") from None
    best = metrics.get("best_checkpoint") if isinstance(metrics, dict) else None
    name = Path(best).name if isinstance(best, str) and best else "last.ckpt"
    try:
        path = inside(run / "checkpoints", name, str(where))
    except DataError as e:
        raise ConfigError(str(e)) from None
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


def load_model(ckpt: Path, allow_unsafe: bool = False, calibrate: bool = True) -> Any:
    """A run's checkpoint as a module, with the run's temperatures (``calibration.json`` beside
    its ``checkpoints/``) when ``calibrate`` and the run has them."""
    from mask_cls.checkpoint_io import load_checkpoint
    from mask_cls.evaluation.temperature import read

    module = load_checkpoint(str(ckpt), allow_unsafe=allow_unsafe)
    temps = read(Path(ckpt).parent.parent, module.net.head.outputs, ckpt) if calibrate else None
    if temps is not None:
        module.net.set_temperatures(temps)
        log.info("calibrated: temperatures %s (%s)", temps, Path(ckpt).parent.parent / "calibration.json")
    return module


def ensemble_probs(runs: Sequence[str | Path], run_weights: Sequence[float], paths: Sequence[str],
                   tta: Sequence[str], allow_unsafe: bool = False, calibrate: bool = True,
                   **predict_kw) -> tuple[list[np.ndarray], list[float], list[str]]:
    """Every model of every run predicts ``paths`` (TTA views averaged): (per-model (N, 18)
    probabilities, per-model weights (a run's weight shared by its folds), checkpoint paths)."""
    from mask_cls.inference.predict import predict_paths

    checkpoints = [(run_checkpoints(run), w) for run, w in zip(runs, run_weights)]  # all found before any work
    probs, weights, models = [], [], []
    for ckpts, w in checkpoints:
        for ckpt in ckpts:
            log.info("predicting with %s", ckpt)
            module = load_model(ckpt, allow_unsafe, calibrate)
            probs.append(predict_paths(module, paths, tta, progress=True, **predict_kw))
            weights.append(w / len(ckpts))
            models.append(str(ckpt))
    return probs, weights, models
