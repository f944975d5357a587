"""``task=predict run_dir=DIR``: the eval set predicted by one run, a cv run's folds, or several
runs with weights; TTA views averaged; soft (mean probabilities) or hard voting."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig

from mask_cls.data import layouts
from mask_cls.engine import predict_kwargs
from mask_cls.errors import ConfigError
from mask_cls.evaluation.submission import write_submission
from mask_cls.inference.ensemble import hard_vote, soft_vote
from mask_cls.inference.predict import fill_unreadable
from mask_cls.inference.runs import ensemble_probs
from mask_cls.io import write_csv, write_json
from mask_cls.labels import PROB_COLUMNS
from mask_cls.rundir import log
from mask_cls.tasks import register

VOTES = {"soft": soft_vote, "hard": hard_vote}


def runs_and_weights(cfg: DictConfig) -> tuple[list[str], list[float]]:
    """``run_dir`` (one or a list) and ``task.weights`` (one per run, default equal)."""
    if not cfg.get("run_dir"):
        raise ConfigError(f"task={cfg.task.name} needs run_dir=DIR (a train or cv run), or run_dir=[DIR1,DIR2]")
    runs = list(cfg.run_dir) if isinstance(cfg.run_dir, ListConfig | list) else [cfg.run_dir]
    run_weights = list(cfg.task.weights) if cfg.task.get("weights") is not None else [1.0] * len(runs)
    if len(run_weights) != len(runs):
        raise ConfigError(f"task.weights has {len(run_weights)} values for {len(runs)} runs")
    return runs, run_weights


@register("predict")
def predict(cfg: DictConfig, out: Path) -> None:
    runs, run_weights = runs_and_weights(cfg)
    if cfg.task.vote not in VOTES:
        raise ConfigError(f"task.vote={cfg.task.vote!r}: choose soft or hard")
    if cfg.get("images"):
        return predict_folder(cfg, out, runs, run_weights)
    layout = layouts.open(cfg.data)
    info = layout.read_eval(check_images=True)
    if info is None:
        raise ConfigError(f"{layout.root}: no eval set (eval/info.csv) to predict; images=FOLDER predicts any images")
    probs, weights, models = ensemble_probs(runs, run_weights, info["image"], cfg.tta,
                                            cfg.get("allow_unsafe_checkpoint", False), bool(cfg.task.calibrate),
                                            **predict_kwargs(cfg))
    combined = VOTES[cfg.task.vote](probs, weights)
    write_submission(info, fill_unreadable(combined, "eval images").argmax(1), out / "submission.csv")
    if cfg.task.save_probs:
        write_csv(info[["ImageID"]].assign(**dict(zip(PROB_COLUMNS, combined.T))), out / "probs.csv")
    write_json({"models": models, "weights": weights, "tta": list(cfg.tta), "vote": cfg.task.vote},
               out / "predict.json")
    log.info("submission from %d model(s), tta=%s, %s voting -> %s", len(models), list(cfg.tta),
             cfg.task.vote, out / "submission.csv")


def predict_folder(cfg: DictConfig, out: Path, runs: list[str], run_weights: list[float]) -> None:
    """``images=FOLDER``: every image under it (any sub-folders) -> ``predictions.csv`` with the
    path, the class, its mask / gender / age names and the 18 probabilities (NaN rows for images
    skipped as unreadable)."""
    import numpy as np
    import pandas as pd

    from mask_cls import labels as L
    from mask_cls.data.unlabeled import folder_images

    paths = folder_images(cfg.images)
    kwargs, faces = predict_kwargs(cfg), None
    if cfg.task.get("crop", "none") == "face":  # ordinary photos: find the face, crop it as the model trained
        from mask_cls.data.crop_rule import crop_settings, trained_on
        from mask_cls.data.facecrop import CropReader, detect_all
        from mask_cls.rundir import typed_overrides

        typed = {o.lstrip("+~").split("=", 1)[0] for o in typed_overrides()}
        crop = crop_settings(cfg.task, typed, trained_on(runs[0]))
        faces = detect_all(paths, crop["min_face"], crop["detector"])
        size = cfg.data.get("image_size")
        kwargs["read"] = CropReader(faces, crop["margin"], crop["aspect"],
                                    (int(size[0]), int(size[1])) if size is not None else None)
        log.info("faces found in %d of %d image(s) (%s); the rest centre-cropped", sum(f is not None for f in faces.values()),
                 len(paths), crop["detector"])
    elif cfg.task.get("crop", "none") != "none":
        raise ConfigError(f"task.crop={cfg.task.crop!r}: choose none or face")
    probs, weights, models = ensemble_probs(runs, run_weights, paths, cfg.tta, cfg.get("allow_unsafe_checkpoint", False),
                                            bool(cfg.task.calibrate), **kwargs)
    combined = VOTES[cfg.task.vote](probs, weights)
    read = ~np.isnan(combined).any(1)
    label = np.where(read, np.nan_to_num(combined).argmax(1), -1)
    m, g, a = L.decode(np.maximum(label, 0))

    def names(values, table):
        return [table[int(v)] if ok else "" for v, ok in zip(values, read)]

    table = pd.DataFrame({"path": paths, "label": label, "mask": names(m, L.MASK_NAMES),
                          "gender": names(g, L.GENDER_NAMES), "age": names(a, L.AGE_NAMES),
                          **dict(zip(PROB_COLUMNS, combined.T))})
    if faces is not None:  # the box each prediction was made on (empty: none found, centre crop)
        for k, col in enumerate(("face_x", "face_y", "face_w", "face_h")):
            table[col] = [f[0][k] if f else None for f in (faces[p] for p in paths)]
        table["face_score"] = [f[1] if f else None for f in (faces[p] for p in paths)]
    write_csv(table, out / "predictions.csv")
    write_json({"models": models, "weights": weights, "tta": list(cfg.tta), "vote": cfg.task.vote,
                "images": str(cfg.images), "unreadable": int((~read).sum())}, out / "predict.json")
    log.info("%d image(s) of %s predicted by %d model(s) -> %s", len(paths), cfg.images, len(models),
             out / "predictions.csv")
