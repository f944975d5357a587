"""``task=pseudo run_dir=DIR [unlabeled=eval|FOLDER]``: pseudo-labels from an ensemble.

Every model of the run(s) predicts the unlabeled images with TTA; the softmax probabilities
are averaged over models and views; images whose top probability reaches ``task.threshold``
(optionally only the most confident ``task.top_share`` of each predicted class) are written
to ``pseudo.csv`` for ``data.pseudo_csv=`` of a later training run.

From a cv run, each fold's model also labels the images alone (``pseudo_fold{k}.csv``): the
model of fold k never saw fold k's validation persons, so a retrained fold k that takes its
pseudo-labels from there (``data.pseudo_csv=<this run's folder>``) keeps an honest CV score;
the ensemble's labels carry every fold's validation labels into every other fold.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from mask_cls import labels as L
from mask_cls.data import layouts, pseudo
from mask_cls.data.unlabeled import unlabeled_images
from mask_cls.engine import predict_kwargs
from mask_cls.evaluation.figures import class_histogram_figure
from mask_cls.inference.ensemble import soft_vote
from mask_cls.inference.runs import ensemble_probs
from mask_cls.io import write_csv, write_json
from mask_cls.tasks import register
from mask_cls.tasks.common import fresh_run_dir, log
from mask_cls.tasks.predict import runs_and_weights


def per_fold_files(runs: list, probs: list[np.ndarray], models: list[str], paths: list[str], threshold: float,
                   top_share, out) -> dict | None:
    """``pseudo_fold{k}.csv`` from fold k's model alone, when the models are the folds of one
    complete cv run; its split (n_folds, split_seed) and the kept count per fold, else None."""
    from pathlib import Path

    from mask_cls.run_config import saved_config

    folds = [Path(m).parent.parent.name for m in models]  # RUN/fold_k/checkpoints/best.ckpt
    found = saved_config(runs[0]) if len(runs) == 1 else None
    data = (found[1].get("data") or {}) if found else {}
    if not all(f.startswith("fold_") for f in folds) or len(folds) != data.get("n_folds"):
        return None
    kept = {}
    for name, p in zip(folds, probs):
        k = int(name.split("_")[1])
        table = pseudo.pseudo_table(paths, p, pseudo.select(p, threshold, top_share))
        write_csv(table, out / f"pseudo_fold{k}.csv")
        kept[k] = len(table)
    return {"n_folds": int(data["n_folds"]), "split_seed": int(data["split_seed"]), "kept": kept}


def histogram_text(predicted: np.ndarray, kept: np.ndarray) -> str:
    lines = [f"{'class':<28}{'predicted':>10}{'kept':>8}{'kept %':>8}"]
    for c in range(L.NUM_CLASSES):
        share = 100 * kept[c] / predicted[c] if predicted[c] else 0.0
        lines.append(f"{c:>2} {L.class_name(c):<25}{predicted[c]:>10}{kept[c]:>8}{share:>7.1f}%")
    lines.append(f"{'all':<28}{predicted.sum():>10}{kept.sum():>8}{100 * kept.sum() / max(1, predicted.sum()):>7.1f}%")
    return "\n".join(lines)


@register("pseudo")
def pseudo_labels(cfg: DictConfig) -> None:
    runs, run_weights = runs_and_weights(cfg)
    threshold, top_share = float(cfg.task.threshold), cfg.task.get("top_share")
    pseudo.check_selection(threshold, top_share)
    name, root, options = layouts.options(cfg.data)
    paths = unlabeled_images(cfg.unlabeled, root, cfg.data.get("check_images", True),
                             cfg.data.get("on_bad_image", "error"), name, **options)
    out = fresh_run_dir(cfg)
    log.info("pseudo-labelling %d image(s) of unlabeled=%s", len(paths), cfg.unlabeled)
    probs, weights, models = ensemble_probs(runs, run_weights, paths, cfg.tta,
                                            cfg.get("allow_unsafe_checkpoint", False), **predict_kwargs(cfg))
    combined = soft_vote(probs, weights)
    keep = pseudo.select(combined, threshold, top_share)
    table = pseudo.pseudo_table(paths, combined, keep)
    write_csv(table, out / "pseudo.csv")
    folds = per_fold_files(list(runs), probs, models, paths, threshold, top_share, out)
    predicted = np.bincount(combined.argmax(1), minlength=L.NUM_CLASSES)
    kept = np.bincount(table["label"].to_numpy(dtype=int), minlength=L.NUM_CLASSES)
    class_histogram_figure(predicted, kept, out / "pseudo_classes.png",
                           f"pseudo-labels: {len(table)} of {len(paths)} kept (threshold {threshold})")
    write_json({"models": models, "weights": weights, "tta": list(cfg.tta), "unlabeled": str(cfg.unlabeled),
                "threshold": threshold, "top_share": top_share, "images": len(paths), "kept": len(table),
                "mean_confidence_kept": float(table["confidence"].mean()) if len(table) else None,
                "predicted_per_class": predicted.tolist(), "kept_per_class": kept.tolist(), "folds": folds},
               out / "pseudo.json")
    log.info("class histogram of the pseudo-labels:\n%s", histogram_text(predicted, kept))
    log.info("%d of %d image(s) kept from %d model(s), tta=%s -> %s", len(table), len(paths), len(models),
             list(cfg.tta), out / "pseudo.csv")
    if folds:
        log.info("per fold (each fold's model alone), kept %s -> pseudo_fold{k}.csv; a cv run on the same folds "
                 "(n_folds=%d, split_seed=%d) uses them with data.pseudo_csv=%s", folds["kept"], folds["n_folds"],
                 folds["split_seed"], out)
    else:
        log.info("train with data.pseudo_csv=%s", out / "pseudo.csv")
