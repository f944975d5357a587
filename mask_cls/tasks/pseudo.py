"""``task=pseudo run_dir=DIR [unlabeled=eval|FOLDER]``: pseudo-labels from an ensemble.

Every model of the run(s) predicts the unlabeled images with TTA; the softmax probabilities
are averaged over models and views; images whose top probability reaches ``task.threshold``
(optionally only the most confident ``task.top_share`` of each predicted class) are written
to ``pseudo.csv`` for ``data.pseudo_csv=`` of a later training run. The same selection on the
models' own validation predictions estimates how many of those labels are right; with
``task.min_precision`` it chooses the threshold.

From a cv run, each fold's model also labels the images alone (``pseudo_fold{k}.csv``): the
model of fold k never saw fold k's validation persons, so a retrained fold k that takes its
pseudo-labels from there (``data.pseudo_csv=<this run's folder>``) keeps an honest CV score;
the ensemble's labels carry every fold's validation labels into every other fold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from mask_cls import labels as L
from mask_cls.data import layouts, pseudo
from mask_cls.data.unlabeled import unlabeled_images
from mask_cls.engine import predict_kwargs
from mask_cls.errors import ConfigError
from mask_cls.evaluation.figures import class_histogram_figure, selection_figure
from mask_cls.inference.ensemble import soft_vote
from mask_cls.inference.runs import ensemble_probs, run_checkpoints
from mask_cls.io import write_csv, write_json
from mask_cls.rundir import log
from mask_cls.ssl.pseudo import (
    histogram_text,
    log_teacher,
    per_fold_files,
    teacher_on_validation,
    threshold_from_validation,
    validation_parts,
    validation_predictions,
)
from mask_cls.tasks import register
from mask_cls.tasks.predict import runs_and_weights


def calibrated_labels(runs: list, calibrate: bool) -> bool:
    """Whether the teacher predicts with its temperatures: not a cv run's folds, whose temperature
    was fitted on the validation persons that fold's own pseudo-labels must not know."""
    if calibrate and len(runs) == 1 and any(Path(runs[0]).glob("fold_*/metrics.json")):
        log.info("a cv run: its models predict uncalibrated (each fold's temperature was fitted on the validation "
                 "persons its own pseudo-labels must not know)")
        return False
    return calibrate


@register("pseudo")
def pseudo_labels(cfg: DictConfig, out: Path) -> None:
    runs, run_weights = runs_and_weights(cfg)
    threshold, top_share = float(cfg.task.threshold), cfg.task.get("top_share")
    pseudo.check_selection(threshold, top_share)
    min_precision = cfg.task.get("min_precision")
    if min_precision is not None and not 0 < float(min_precision) <= 1:
        raise ConfigError(f"task.min_precision={min_precision}: must be in (0, 1], or null")
    paths = unlabeled_images(cfg.unlabeled, layouts.open(cfg.data))
    paths, duplicates = pseudo.one_row_per_file(paths)
    parts = validation_parts([str(c) for run in runs for c in run_checkpoints(run)],
                             calibrate := calibrated_labels(runs, bool(cfg.task.calibrate)))
    found = validation_predictions(parts)
    # the trade-off on validation, every threshold: drawn, and where min_precision chooses
    curve = None if found is None else pseudo.selection_curve(found[0], found[1], top_share)
    if min_precision is not None:  # before any work: a run that cannot choose writes nothing
        threshold = threshold_from_validation(curve, float(min_precision))
    log.info("pseudo-labelling %d image(s) of unlabeled=%s", len(paths), cfg.unlabeled)
    probs, weights, models = ensemble_probs(runs, run_weights, paths, cfg.tta, cfg.get("allow_unsafe_checkpoint", False),
                                            calibrate, **predict_kwargs(cfg))
    combined = soft_vote(probs, weights)
    keep = pseudo.select(combined, threshold, top_share)
    table = pseudo.pseudo_table(paths, combined, keep)
    write_csv(table, out / "pseudo.csv")
    folds = per_fold_files(list(runs), probs, models, paths, threshold, top_share, out,
                           None if min_precision is None else float(min_precision), parts)
    teacher = teacher_on_validation(found, len(models), threshold, top_share)
    if curve is not None and found is not None:
        write_csv(curve, out / "pseudo_threshold.csv")
        selection_figure(curve, threshold, out / "pseudo_threshold.png",
                         f"the selection on the validation persons ({len(found[0])} images)",
                         None if min_precision is None else float(min_precision))
    predicted = np.bincount(combined.argmax(1), minlength=L.NUM_CLASSES)
    kept = np.bincount(table["label"].to_numpy(dtype=int), minlength=L.NUM_CLASSES)
    class_histogram_figure(predicted, kept, out / "pseudo_classes.png",
                           f"pseudo-labels: {len(table)} of {len(paths)} kept (threshold {threshold})")
    write_json({"models": models, "weights": weights, "tta": list(cfg.tta), "calibrated": calibrate, "unlabeled": str(cfg.unlabeled),
                "threshold": threshold, "top_share": top_share, "images": len(paths), "duplicates": duplicates, "kept": len(table),
                "mean_confidence_kept": float(table["confidence"].mean()) if len(table) else None,
                "predicted_per_class": predicted.tolist(), "kept_per_class": kept.tolist(), "folds": folds,
                "validation": teacher}, out / "pseudo.json")
    log.info("class histogram of the pseudo-labels:\n%s", histogram_text(predicted, kept))
    log_teacher(teacher, threshold)
    log.info("%d of %d image(s) kept from %d model(s), tta=%s -> %s", len(table), len(paths), len(models),
             list(cfg.tta), out / "pseudo.csv")
    if folds:
        log.info("per fold (each fold's model alone), kept %s -> pseudo_fold{k}.csv; a cv run on the same folds "
                 "(n_folds=%d, split_seed=%d) uses them with data.pseudo_csv=%s", folds["kept"], folds["n_folds"],
                 folds["split_seed"], out)
    else:
        log.info("train with data.pseudo_csv=%s", out / "pseudo.csv")
