"""``task=cv``: train all K folds, write out-of-fold predictions, the CV score, a report,
suspect labels and the fold ensemble's submission."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from mask_cls.data import layouts
from mask_cls.engine import (
    checked,
    eval_table,
    fit_fold,
    in_dir,
    instantiate_all,
    predict_kwargs,
    with_identity,
)
from mask_cls.evaluation.metrics import score
from mask_cls.evaluation.report import write_report
from mask_cls.evaluation.submission import write_submission
from mask_cls.evaluation.suspects import find_suspects
from mask_cls.evaluation.temperature import calibrate_run, validation_pass
from mask_cls.inference.ensemble import soft_vote
from mask_cls.inference.predict import fill_unreadable, predict_paths
from mask_cls.io import write_csv, write_json
from mask_cls.labels import PROB_COLUMNS
from mask_cls.rundir import finish_loggers, log, loggable_config, save_run_config
from mask_cls.tasks import register

#: below this CV macro F1 the suspect list says more about the model than about the labels
WEAK_F1 = 0.5


def train_fold(cfg: DictConfig, out: Path, k: int, layout: layouts.Layout, info) -> tuple | None:
    """Fold k in ``out/fold_k`` as one train run (config, report, submission): its out-of-fold
    rows with probabilities, its scores and its eval probabilities; None in another DDP process."""
    fold_dir = out / f"fold_{k}"
    fold_cfg = in_dir(cfg, fold_dir, fold=k)
    # one wandb run per fold, fold_k in the cv run's group
    OmegaConf.update(fold_cfg, "_identity", {"name": f"fold_{k}", "group": out.name, "job_type": "train"},
                     force_add=True)
    res = fit_fold(fold_cfg, fold_dir, layout)
    if not res.is_main:
        return None
    val = res.dm.rows("val")
    logits, rows, probs = validation_pass(res.module, val["image"], cfg.tta, predict_kwargs(cfg))
    save_run_config(fold_cfg, fold_dir, (f"data.fold={k}",))
    write_report(val["label"], probs, fold_dir / "report", f"fold {k}", images=list(val["image"]),
                 persons=list(val["person"]),
                 tta=cfg.tta, show=False)
    part = val[["person", "image", "label"]].assign(fold=k)
    oof = pd.concat([part, pd.DataFrame(probs, columns=PROB_COLUMNS)], axis=1)
    scores = score(val["label"], probs.argmax(1)) | {"fold": k, **{
        m: res.metrics[m] for m in ("val/f1", "val/f1_best") if m in res.metrics}}
    if cfg.task.get("calibrate", False):  # each fold on its own validation persons: its out-of-fold rows
        calibrate_run(res.module, val, logits, rows, fold_dir, f"validation persons (fold {k})",
                      res.metrics.get("best_checkpoint") or None)
    eval_probs = None
    if info is not None:
        eval_probs = predict_paths(res.module, info["image"], cfg.tta, progress=True, **predict_kwargs(cfg))
        write_submission(info, fill_unreadable(eval_probs, "eval images").argmax(1), fold_dir / "submission.csv")
    return oof, scores, eval_probs


@register("cv")
def cv(cfg: DictConfig, out: Path) -> float | None:
    layout = layouts.open(cfg.data, synth=True)  # one for every fold: the data is read as it is once
    info = eval_table(cfg, layout)  # checked before training: a broken eval set fails fast
    oof_parts, fold_scores, eval_probs = [], [], []
    for k in range(int(cfg.data.n_folds)):
        fold = train_fold(cfg, out, k, layout, info)
        finish_loggers()  # the next fold gets its own wandb run
        if fold is None:
            continue
        oof_parts.append(fold[0])
        fold_scores.append(fold[1])
        if fold[2] is not None:
            eval_probs.append(fold[2])

    if not oof_parts:  # another process of a DDP run
        return None
    oof = pd.concat(oof_parts, ignore_index=True)
    oof["pred"] = oof[PROB_COLUMNS].to_numpy().argmax(1)
    write_csv(oof, out / "oof.csv")
    f1s = np.array([s["f1"] for s in fold_scores])
    summary = {"cv/f1": score(oof["label"], oof["pred"])["f1"], "cv/f1_mean": float(f1s.mean()),
               "cv/f1_std": float(f1s.std(ddof=1)) if len(f1s) > 1 else 0.0, "folds": fold_scores,
               "tta": list(cfg.tta)}
    loggers = summary_loggers(cfg, out)
    write_report(oof["label"], oof[PROB_COLUMNS].to_numpy(), out / "report", "cv (out-of-fold)",
                 images=list(oof["image"]), tta=cfg.tta, loggers=loggers, save_predictions=False,
                 persons=list(oof["person"]))  # oof.csv holds them
    summary |= {f"cv/{k}": v for k, v in score(oof["label"], oof["pred"]).items() if k != "f1"}
    write_json(summary, out / "cv.json")
    log_summary(loggers, summary, out / "oof.csv")
    suspects = find_suspects(oof, cfg.task.suspect_threshold, cfg.task.suspect_share)
    write_csv(suspects, out / "suspects.csv")
    log.info("CV macro F1 %.4f (folds %.4f +- %.4f); %d suspect label(s) -> %s", summary["cv/f1"],
             summary["cv/f1_mean"], summary["cv/f1_std"], len(suspects), out / "suspects.csv")
    if float(summary["cv/f1"]) < WEAK_F1:  # type: ignore[arg-type]
        log.warning("suspects.csv comes from models of CV macro F1 %.2f: its 'suspect labels' (or their absence) are the models' "
                    "own mistakes; train a stronger model before relabelling from it", summary["cv/f1"])
    if eval_probs:
        path = write_submission(info, fill_unreadable(soft_vote(eval_probs), "eval images").argmax(1),
                                out / "submission.csv")
        log.info("fold-ensemble submission (%d models, tta=%s) -> %s", len(eval_probs), list(cfg.tta), path)
    return checked(summary, "cv/f1")


def summary_loggers(cfg: DictConfig, out) -> list:
    """The loggers of the cv summary: a wandb run named ``cv`` (job_type ``cv``) in the cv run's
    group; the other loggers as configured."""
    node = cfg.get("logger")
    if not node:
        return []
    c = in_dir(cfg, out)
    OmegaConf.update(c, "_identity", {"name": "cv", "group": out.name, "job_type": "cv"}, force_add=True)
    loggers = instantiate_all(with_identity(c.logger, c))
    for lg in loggers:  # the cv run's config beside its score (MLflow's params, wandb's config)
        lg.log_hyperparams(loggable_config(c))
    return loggers


def log_summary(loggers: list, summary: dict, oof_csv) -> None:
    """``cv/f1`` and the per-fold scores as metrics; on wandb, also the summary; ``oof.csv`` as an
    artifact on wandb and MLflow."""
    flat = {k: v for k, v in summary.items() if isinstance(v, int | float)}
    flat |= {f"cv/fold_{s['fold']}/f1": s["f1"] for s in summary["folds"]}
    for lg in loggers:
        lg.log_metrics(flat)
        if type(lg).__name__ == "WandbLogger":
            import wandb

            lg.experiment.summary.update(flat)
            artifact = wandb.Artifact("oof", type="oof")
            artifact.add_file(str(oof_csv))
            lg.experiment.log_artifact(artifact)
        if type(lg).__name__ == "MLFlowLogger":
            lg.experiment.log_artifact(lg.run_id, str(oof_csv))
        lg.finalize("success")  # no trainer closes these: the MLflow run ends FINISHED
