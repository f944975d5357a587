"""Distillation's teacher: which models teach a student of fold k, and their probabilities.

A cv run on the student's folds teaches with fold k's model alone (``fold_teacher``): it never
saw fold k's validation persons, so the student's val/f1 stays honest, as per-fold pseudo-labels
do. Any other teacher (a train run, a list of runs, ``task.fold_teacher=false``) teaches with
all its models; if those saw the student's validation persons its val/f1 is optimistic (a
warning says so; scores on other data are not affected)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mask_cls.data import pseudo
from mask_cls.errors import ConfigError
from mask_cls.inference.runs import run_checkpoints
from mask_cls.rundir import log


def fold_model(run: Path, fold: int, n_folds: int, split_seed: int, val_persons: Sequence[str]) -> Path | None:
    """Fold ``fold``'s checkpoint when ``run`` is a cv run on these folds, else None; a cv run on
    other folds is an error (its fold k saw some of this fold's validation persons)."""
    from mask_cls.run_config import saved_config
    from mask_cls.ssl.pseudo import fold_persons

    if not (run / f"fold_{fold}" / "metrics.json").is_file():
        return None
    found = saved_config(run)
    data = (found[1].get("data") or {}) if found else {}
    if (data.get("n_folds"), data.get("split_seed")) != (n_folds, split_seed):
        raise ConfigError(f"teacher={run}: a cv run of n_folds, split_seed = {(data.get('n_folds'), data.get('split_seed'))}; "
                          f"this student has {(n_folds, split_seed)}: use the same folds (fold k learns from fold k's "
                          "teacher), or task.fold_teacher=false (its val/f1 is then optimistic)")
    recorded = (fold_persons(run) or {}).get(fold)
    if recorded is None:  # no oof.csv: nothing shows which persons fold k validated on; fail closed
        raise ConfigError(f"teacher={run}: no record of fold {fold}'s validation persons (oof.csv); nothing shows "
                          "that its model never saw this student's: use task.fold_teacher=false (val/f1 then optimistic)")
    if recorded != pseudo.persons_digest(val_persons):
        raise ConfigError(f"teacher={run}: fold {fold}'s validation persons are not this student's (other data, or "
                          "persons added): its model may have seen them")
    return run_checkpoints(run / f"fold_{fold}")[0]


def teacher_models(runs: Sequence[str], fold: int, n_folds: int, split_seed: int, val_persons: Sequence[str],
                   fold_teacher: bool = True) -> tuple[list[Path], bool]:
    """(the checkpoints that teach, whether the student's val/f1 stays honest)."""
    if fold_teacher and len(runs) == 1:
        own = fold_model(Path(runs[0]), fold, n_folds, split_seed, val_persons)
        if own is not None:
            log.info("teacher: fold %d's model of the cv run %s (it never saw this fold's validation persons)", fold, runs[0])
            return [own], True
    models = [c for run in runs for c in run_checkpoints(run)]
    log.warning("teacher: %d model(s) of %s teach together; if they trained on this fold's validation persons, the "
                "student's val/f1 is optimistic (a cv teacher on the same folds teaches with fold %d's model alone)",
                len(models), ", ".join(map(str, runs)), fold)
    return models, False


def training_images(train: pd.DataFrame, unlabeled: list[str], val: pd.DataFrame) -> tuple[list[str], int]:
    """What the teacher labels: the labeled training images, then the unlabeled ones that are
    neither validation images of this fold nor labeled training images (files compared, not
    names); and how many unlabeled images were left out."""
    s = pd.Series(unlabeled, dtype=object)
    drop = pseudo.among(s, val["image"]).to_numpy() | pseudo.among(s, train["image"]).to_numpy() if len(s) else \
        np.zeros(0, dtype=bool)
    kept = [p for p, d in zip(unlabeled, drop) if not d]
    return [*map(str, train["image"]), *kept], int(drop.sum())
