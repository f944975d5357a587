"""``task=predict run_dir=DIR``: the eval set predicted by one run, a cv run's folds, or several
runs with weights; TTA views averaged; soft (mean probabilities) or hard voting."""

from __future__ import annotations

from omegaconf import DictConfig, ListConfig

from mask_cls.data import layout
from mask_cls.errors import ConfigError
from mask_cls.evaluation.submission import write_submission
from mask_cls.evaluation.suspects import PROB_COLUMNS
from mask_cls.inference.ensemble import hard_vote, soft_vote
from mask_cls.inference.predict import predict_paths
from mask_cls.inference.runs import run_checkpoints
from mask_cls.io import write_csv, write_json
from mask_cls.module import load_checkpoint
from mask_cls.tasks import register
from mask_cls.tasks.common import fresh_run_dir, log
from mask_cls.tasks.train import predict_kwargs

VOTES = {"soft": soft_vote, "hard": hard_vote}


@register("predict")
def predict(cfg: DictConfig) -> None:
    if not cfg.get("run_dir"):
        raise ConfigError("task=predict needs run_dir=DIR (a train or cv run), or run_dir=[DIR1,DIR2]")
    runs = list(cfg.run_dir) if isinstance(cfg.run_dir, ListConfig | list) else [cfg.run_dir]
    run_weights = list(cfg.task.weights) if cfg.task.weights is not None else [1.0] * len(runs)
    if len(run_weights) != len(runs):
        raise ConfigError(f"task.weights has {len(run_weights)} values for {len(runs)} runs")
    if cfg.task.vote not in VOTES:
        raise ConfigError(f"task.vote={cfg.task.vote!r}: choose soft or hard")
    if not layout.has_eval(cfg.data.root):
        raise ConfigError(f"{cfg.data.root}: no eval set (eval/info.csv) to predict")
    info = layout.read_eval(cfg.data.root)
    out = fresh_run_dir(cfg)
    models, probs, weights = [], [], []
    for run, w in zip(runs, run_weights):
        ckpts = run_checkpoints(run)
        for ckpt in ckpts:  # a run's weight is shared by its folds
            log.info("predicting with %s", ckpt)
            module = load_checkpoint(str(ckpt), allow_unsafe=cfg.get("allow_unsafe_checkpoint", False))
            probs.append(predict_paths(module, info["image"], cfg.tta, progress=True, **predict_kwargs(cfg)))
            weights.append(w / len(ckpts))
            models.append(str(ckpt))
    combined = VOTES[cfg.task.vote](probs, weights)
    write_submission(info, combined.argmax(1), out / "submission.csv")
    if cfg.task.save_probs:
        write_csv(info[["ImageID"]].assign(**dict(zip(PROB_COLUMNS, combined.T))), out / "probs.csv")
    write_json({"models": models, "weights": weights, "tta": list(cfg.tta), "vote": cfg.task.vote},
               out / "predict.json")
    log.info("submission from %d model(s), tta=%s, %s voting -> %s", len(models), list(cfg.tta),
             cfg.task.vote, out / "submission.csv")
