"""``task=pseudo run_dir=DIR [unlabeled=eval|FOLDER]``: pseudo-labels from an ensemble.

Every model of the run(s) predicts the unlabeled images with TTA; the softmax probabilities
are averaged over models and views; images whose top probability reaches ``task.threshold``
(optionally only the most confident ``task.top_share`` of each predicted class) are written
to ``pseudo.csv`` for ``data.pseudo_csv=`` of a later training run.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from mask_cls import labels as L
from mask_cls.data import pseudo
from mask_cls.data.unlabeled import unlabeled_images
from mask_cls.evaluation.figures import class_histogram_figure
from mask_cls.inference.ensemble import soft_vote
from mask_cls.inference.runs import ensemble_probs
from mask_cls.io import write_csv, write_json
from mask_cls.tasks import register
from mask_cls.tasks.common import fresh_run_dir, log
from mask_cls.tasks.predict import runs_and_weights
from mask_cls.tasks.train import predict_kwargs


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
    paths = unlabeled_images(cfg.unlabeled, cfg.data.root, cfg.data.get("check_images", True),
                             cfg.data.get("on_bad_image", "error"))
    out = fresh_run_dir(cfg)
    log.info("pseudo-labelling %d image(s) of unlabeled=%s", len(paths), cfg.unlabeled)
    probs, weights, models = ensemble_probs(runs, run_weights, paths, cfg.tta,
                                            cfg.get("allow_unsafe_checkpoint", False), **predict_kwargs(cfg))
    combined = soft_vote(probs, weights)
    keep = pseudo.select(combined, threshold, top_share)
    table = pseudo.pseudo_table(paths, combined, keep)
    write_csv(table, out / "pseudo.csv")
    predicted = np.bincount(combined.argmax(1), minlength=L.NUM_CLASSES)
    kept = np.bincount(table["label"].to_numpy(dtype=int), minlength=L.NUM_CLASSES)
    class_histogram_figure(predicted, kept, out / "pseudo_classes.png",
                           f"pseudo-labels: {len(table)} of {len(paths)} kept (threshold {threshold})")
    write_json({"models": models, "weights": weights, "tta": list(cfg.tta), "unlabeled": str(cfg.unlabeled),
                "threshold": threshold, "top_share": top_share, "images": len(paths), "kept": len(table),
                "mean_confidence_kept": float(table["confidence"].mean()) if len(table) else None,
                "predicted_per_class": predicted.tolist(), "kept_per_class": kept.tolist()},
               out / "pseudo.json")
    log.info("class histogram of the pseudo-labels:\n%s", histogram_text(predicted, kept))
    log.info("%d of %d image(s) kept from %d model(s), tta=%s -> %s  (train with data.pseudo_csv=%s)",
             len(table), len(paths), len(models), list(cfg.tta), out / "pseudo.csv", out / "pseudo.csv")
