"""``task=train``: fit one fold, keep the best checkpoint, report on validation, write a submission."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mask_cls.data import layouts
from mask_cls.engine import checked, eval_table, fit_fold, predict_kwargs
from mask_cls.evaluation.report import write_report
from mask_cls.evaluation.submission import write_submission
from mask_cls.evaluation.temperature import calibrate_run, validation_pass
from mask_cls.inference.predict import fill_unreadable, predict_paths
from mask_cls.rundir import log
from mask_cls.tasks import register


@register("train")
def train(cfg: DictConfig, out: Path) -> float | None:
    layout = layouts.open(cfg.data, synth=True)  # the embedded default is drawn on first use
    info = eval_table(cfg, layout)  # checked before training: a broken eval set fails fast
    res = fit_fold(cfg, out, layout)
    if not res.is_main:
        return None
    if res.metrics["fast_dev_run"]:
        log.info("fast_dev_run: no report or submission written")
    else:
        val = res.dm.rows("val")
        # with the submission's TTA (as a cv fold's report): task=pseudo estimates the precision of
        # labels predicted with it from these rows, so they must be predicted the same way
        logits, rows, probs = validation_pass(res.module, val["image"], cfg.tta, predict_kwargs(cfg))
        write_report(val["label"], probs, out / "report", f"val (tta={list(cfg.tta)})", images=list(val["image"]),
                     persons=list(val["person"]),
                     tta=cfg.tta, loggers=res.loggers, step=res.step)
        if cfg.task.get("calibrate", False):  # the same pass's logits: the validation persons predicted once
            calibrate_run(res.module, val, logits, rows, out, f"validation persons (fold {res.dm.fold})",
                          res.metrics.get("best_checkpoint") or None, res.loggers, res.step)
        if info is not None:
            probs = predict_paths(res.module, info["image"], cfg.tta, progress=True, **predict_kwargs(cfg))
            path = write_submission(info, fill_unreadable(probs, "eval images").argmax(1), out / "submission.csv")
            log.info("submission (%d rows, tta=%s) -> %s", len(probs), list(cfg.tta), path)
    return checked(res.metrics, cfg.task.optimized_metric)
