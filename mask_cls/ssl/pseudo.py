"""Pseudo-label selection: per-fold label files, the threshold chosen on validation persons,
and what the selection keeps (and gets right) on the teachers' own validation predictions.

``task=pseudo`` (tasks/pseudo.py) calls these; they are the algorithm, the task is the files.
"""

from __future__ import annotations

import numpy as np

from mask_cls import labels as L
from mask_cls.data import pseudo
from mask_cls.errors import ConfigError
from mask_cls.io import write_csv
from mask_cls.rundir import log


def per_fold_files(runs: list, probs: list[np.ndarray], models: list[str], paths: list[str], threshold: float,
                   top_share, out, min_precision: float | None = None, parts: list | None = None) -> dict | None:
    """``pseudo_fold{k}.csv`` from fold k's model alone, when the models are the folds of one
    complete cv run; its split (n_folds, split_seed, a digest of each fold's validation persons)
    and the kept count per fold, else None. With ``min_precision``, fold k's threshold is chosen
    on the other folds' validation predictions (``parts``, one per model): fold k's own validation
    persons, on which its retrained model is scored, never choose it."""
    from pathlib import Path

    from mask_cls.run_config import saved_config

    folds = [Path(m).parent.parent.name for m in models]  # RUN/fold_k/checkpoints/best.ckpt
    found = saved_config(runs[0]) if len(runs) == 1 else None
    data = (found[1].get("data") or {}) if found else {}
    if not all(f.startswith("fold_") for f in folds) or len(folds) != data.get("n_folds"):
        return None
    kept, thresholds = {}, {}
    for i, (name, p) in enumerate(zip(folds, probs)):
        k = int(name.split("_")[1])
        thresholds[k] = threshold if min_precision is None else fold_threshold(parts, i, min_precision, k)
        table = pseudo.pseudo_table(paths, p, pseudo.select(p, thresholds[k], top_share))
        write_csv(table, out / f"pseudo_fold{k}.csv")
        kept[k] = len(table)
    return {"n_folds": int(data["n_folds"]), "split_seed": int(data["split_seed"]), "kept": kept,
            "thresholds": thresholds, "persons": fold_persons(Path(runs[0]))}


def fold_threshold(parts: list | None, own: int, target: float, fold: int) -> float:
    """The threshold for fold ``fold``'s file, chosen on every other model's validation predictions."""
    others = [p for i, p in enumerate(parts or []) if i != own and p is not None]
    if not others:
        raise ConfigError(f"task.min_precision: fold {fold} needs the other folds' validation predictions "
                          "(report/predictions.csv); set task.threshold instead")
    y, probs = np.concatenate([p[0] for p in others]), np.concatenate([p[1] for p in others])
    chosen, precision = pseudo.threshold_on_curve(pseudo.selection_curve(y, probs), target)
    if chosen is None:
        raise ConfigError(f"task.min_precision={target}: on the other folds' validation persons no threshold "
                          f"for fold {fold} is right that often (at best {precision:.3f}); lower it")
    return chosen


def fold_persons(run) -> dict | None:
    """Each fold's validation persons of a cv run (its oof.csv), as a digest."""
    import pandas as pd

    oof = run / "oof.csv"
    if not oof.is_file():
        return None
    table = pd.read_csv(oof, usecols=["person", "fold"], dtype={"person": str})
    return {int(k): pseudo.persons_digest(group["person"]) for k, group in table.groupby("fold")}


def validation_parts(models: list[str], calibrated: bool = True) -> list:
    """Each model's own validation predictions (the ``report/predictions.csv`` beside its
    checkpoint; with ``calibrated``, the run's ``predictions_calibrated.csv`` where it has one, as
    its eval predictions are then calibrated too) as (labels, probabilities), None for a model
    without them."""
    from pathlib import Path

    from mask_cls.evaluation.report import PREDICTIONS, read_predictions
    from mask_cls.evaluation.temperature import CALIBRATED

    found = []
    for m in models:
        report = Path(m).parent.parent / "report"  # RUN/checkpoints/x.ckpt
        f = report / CALIBRATED if calibrated and (report / CALIBRATED).is_file() else report / PREDICTIONS
        found.append(read_predictions(f) if f.is_file() else None)
    return found


def validation_predictions(parts: list) -> tuple[np.ndarray, np.ndarray, int] | None:
    """The models' validation predictions pooled: (labels, probabilities, models that have them), or None."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), len(parts)


def teacher_on_validation(found, of_models: int, threshold: float, top_share) -> dict | None:
    """The selection applied to the models' validation predictions: how many images it keeps
    there and how many of those are right. Validation persons are labeled and unseen by the
    model, so this estimates the precision of the pseudo-labels before a student trains."""
    from mask_cls.evaluation.calibration import expected_calibration_error, kept_summary

    if found is None:
        return None
    y, probs, n_models = found
    return {"models": n_models, "of_models": of_models,
            **kept_summary(y, probs, pseudo.select(probs, threshold, top_share)),
            "ece": expected_calibration_error(y, probs)}


def threshold_from_validation(curve, target: float) -> float:
    """``task.min_precision``: the threshold chosen on the selection curve of the validation predictions."""
    if curve is None:
        raise ConfigError("task.min_precision needs the runs' validation predictions (report/predictions.csv, "
                          "written by train and cv runs of this version); set task.threshold instead")
    threshold, precision = pseudo.threshold_on_curve(curve, target)
    if threshold is None:
        raise ConfigError(f"task.min_precision={target}: no threshold is right that often on the validation "
                          f"persons (at best {precision:.3f}); lower it or set task.threshold")
    log.info("task.min_precision=%s: threshold %.4f (right %.1f%% of the time on the validation persons)",
             target, threshold, 100 * precision)
    return threshold


def log_teacher(check: dict | None, threshold: float) -> None:
    if check is None:
        log.info("the run(s) keep no validation predictions (report/%s, written since this version): "
                 "the precision of these labels is not estimated", "predictions.csv")
    elif check["kept"] == 0:
        log.warning("on its validation persons the teacher keeps no image at threshold %s", threshold)
    else:
        over = check["confidence"] - check["right"]
        log.info("on its validation persons (%d of %d model(s)) the teacher keeps %d of %d image(s), "
                 "%.1f%% of them right at a mean confidence of %.1f%%%s: expect about that share of these labels "
                 "to be right", check["models"], check["of_models"], check["kept"], check["images"],
                 100 * check["right"], 100 * check["confidence"],
                 f" (over-confident by {100 * over:.0f} points)" if over > 0.05 else "")


def histogram_text(predicted: np.ndarray, kept: np.ndarray) -> str:
    lines = [f"{'class':<28}{'predicted':>10}{'kept':>8}{'kept %':>8}"]
    for c in range(L.NUM_CLASSES):
        share = 100 * kept[c] / predicted[c] if predicted[c] else 0.0
        lines.append(f"{c:>2} {L.class_name(c):<25}{predicted[c]:>10}{kept[c]:>8}{share:>7.1f}%")
    lines.append(f"{'all':<28}{predicted.sum():>10}{kept.sum():>8}{100 * kept.sum() / max(1, predicted.sum()):>7.1f}%")
    return "\n".join(lines)
