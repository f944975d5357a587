"""``task=distill teacher=RUN [unlabeled=eval|FOLDER]``: one student learns from a teacher.

The teacher (a cv run's fold models, a train run, or a list of runs) predicts every labeled
training image and the unlabeled images once, with TTA (``teacher_probs.csv``); then the student
(the model as configured, often smaller) trains as ``task=train`` does, with ``ssl=distill``:
the teacher's soft targets on all of them plus the labels (``ssl/distill.py``). The same file
teaches another student without the teacher: ``ssl=distill data.soft_targets=<this run>/teacher_probs.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from mask_cls.data import layouts
from mask_cls.data.unlabeled import unlabeled_images
from mask_cls.engine import predict_kwargs
from mask_cls.errors import ConfigError
from mask_cls.evaluation.metrics import score
from mask_cls.inference.ensemble import soft_vote
from mask_cls.inference.predict import predict_paths
from mask_cls.inference.runs import load_model
from mask_cls.io import write_csv, write_json
from mask_cls.labels import PROB_COLUMNS
from mask_cls.rundir import log
from mask_cls.ssl.teacher import teacher_models, training_images
from mask_cls.tasks import register
from mask_cls.tasks.train import train

TEACHER_PROBS = "teacher_probs.csv"


def student_config(cfg: DictConfig, out: Path) -> DictConfig:
    """The run's config with ``ssl=distill`` (the shipped settings unless chosen on the command
    line) and ``data.soft_targets`` on this run's teacher file; what cannot combine is refused."""
    from mask_cls.run_config import CONF

    name = str(cfg.ssl.get("name", "none"))
    if name not in ("none", "distill"):
        raise ConfigError(f"task=distill with ssl={name}: one objective at a time (ssl=distill is the student's)")
    if cfg.data.get("pseudo_csv") or cfg.data.get("soft_targets"):
        raise ConfigError("task=distill computes its own soft targets: leave data.pseudo_csv and data.soft_targets unset")
    if any(float((op or {}).get("p", 0) or 0) > 0 for op in ((cfg.augment.get("batch") or {}).values())):
        raise ConfigError("task=distill with a batch augmentation (CutMix, grid shuffle): not supported; "
                          "use augment=light")
    c = cfg.copy()
    with_flag = OmegaConf.is_struct(c)
    OmegaConf.set_struct(c, False)
    if name == "none":
        c.ssl = OmegaConf.load(CONF / "ssl" / "distill.yaml")  # a shipped file; ${unlabeled} resolves in c
    c.data.soft_targets = str(out / TEACHER_PROBS)
    OmegaConf.set_struct(c, with_flag)
    return c


def teacher_runs(cfg: DictConfig) -> list[str]:
    t = cfg.get("teacher")
    if not t:
        raise ConfigError("task=distill needs teacher=RUN (a cv run, a train run) or teacher=[RUN1,RUN2]")
    return [str(r) for r in t] if isinstance(t, ListConfig | list) else [str(t)]


@register("distill")
def distill(cfg: DictConfig, out: Path) -> float | None:
    runs = teacher_runs(cfg)
    cfg = student_config(cfg, out)
    layout = layouts.open(cfg.data, synth=True)
    split_cfg = cfg.copy()
    split_cfg.data.soft_targets, split_cfg.data.ssl = None, None  # the split alone, before the file exists
    dm = instantiate(split_cfg.data, layout=layout)
    dm.prepare_data()
    dm.setup("fit")
    train_rows, val = dm.rows("train"), dm.rows("val")
    models, honest = teacher_models(runs, dm.fold, dm.n_folds, dm.split_seed, list(val["person"]),
                                    bool(cfg.task.fold_teacher))
    unlabeled = unlabeled_images(str(cfg.ssl.unlabeled), layout)
    paths, left_out = training_images(train_rows, unlabeled, val)
    log.info("teacher: %d model(s) predict %d labeled and %d unlabeled image(s) once (tta=%s)", len(models),
             len(train_rows), len(paths) - len(train_rows), list(cfg.tta))
    kw = predict_kwargs(cfg)
    probs, val_probs = [], []
    for ckpt in models:
        # as trained: distillation has its own temperature, and a cv teacher's was fitted on this fold's validation persons
        module = load_model(ckpt, cfg.get("allow_unsafe_checkpoint", False), calibrate=False)
        probs.append(predict_paths(module, paths, cfg.tta, progress=True, **kw))
        val_probs.append(predict_paths(module, val["image"], cfg.tta, **kw))
    teacher = soft_vote(probs)
    if not np.isfinite(teacher).all():
        raise ConfigError("teacher: an image it could not read has no soft target (data.on_bad_image=skip); "
                          "remove it from the data")
    table = pd.DataFrame(teacher.round(6), columns=PROB_COLUMNS)
    table.insert(0, "image", paths)
    write_csv(table, out / TEACHER_PROBS)
    teacher_val = score(val["label"], soft_vote(val_probs).argmax(1))
    write_json({"models": [str(m) for m in models], "fold": dm.fold, "honest_validation": honest,
                "tta": list(cfg.tta), "calibrated": False, "labeled": len(train_rows),
                "unlabeled": len(paths) - len(train_rows), "unlabeled_left_out": left_out,
                "temperature": float(cfg.ssl.temperature), "alpha": float(cfg.ssl.alpha),
                "teacher_val": teacher_val}, out / "teacher.json")
    log.info("teacher on this fold's validation persons: macro F1 %.4f (%s) -> %s", teacher_val["f1"],
             "never seen by it" if honest else "it may have seen them", out / "teacher.json")
    return train(cfg, out)
