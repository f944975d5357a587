"""What a saved run may change: its *recipe*, the keys that say what is trained and how.

A run directory can come from someone else (a shared drive, a colleague's zip), so ``resume=``
and ``run_dir=`` take from its ``.hydra/overrides.yaml`` only the keys listed here. Everything
else says *where* (files, folders, URLs, hosts, online switches: callbacks' file names, loggers,
paths, hydra) or *how this command runs* (task, devices, progress), and comes from ``conf/`` and
the command line alone. Written once, here; ``tests/test_recipe.py`` enumerates every key of every
config option and fails when a key that names a place is inside the recipe.
"""

from __future__ import annotations

import re
from typing import Any

#: config groups a saved run may choose an option of (an option is a file of this project's conf/)
RECIPE_GROUPS = frozenset({"data", "model", "head", "loss", "optim", "sched", "augment", "sampler", "ssl",
                           "callbacks", "experiment"})
#: keys (and the subtrees under them) a saved run may set to a literal value
RECIPE_KEYS = (
    "seed", "tta", "unlabeled", "engine", "finetune", "synth",
    "head", "loss", "optim", "sched", "augment", "sampler", "ssl",
    "model.backbone", "model.channels_last", "model.drop_path_rate", "model.dropout", "model.dropout_samples",
    "model.neck", "model.normalize", "model.pooling",
    "data.layout", "data.image_size", "data.batch_size", "data.n_folds", "data.fold", "data.split_seed",
    "data.check_images", "data.on_bad_image", "data.max_image_pixels", "data.age_threshold", "data.drop_ages",
    "data.relabel", "data.cache", "data.pseudo_weight",
    "trainer.max_epochs", "trainer.min_epochs", "trainer.max_steps", "trainer.precision",
    "trainer.accumulate_grad_batches", "trainer.gradient_clip_val", "trainer.gradient_clip_algorithm",
    "trainer.check_val_every_n_epoch", "trainer.deterministic", "trainer.limit_train_batches",
    "trainer.limit_val_batches", "trainer.limit_predict_batches", "trainer.overfit_batches",
    "trainer.sync_batchnorm", "trainer.num_sanity_val_steps", "trainer.fast_dev_run",
    "callbacks.swa", "callbacks.ema", "callbacks.early_stopping",
    "task.keep",  # which model a fit keeps: part of how it is trained, though under the command's task
)
#: keys every run records because its user typed them to launch or watch it (which task and
#: inputs, where, on which machine, how it shows and logs): always this command's, never the file's,
#: and skipped without a word (the data root and table are read from the saved config instead)
COMMAND_KEYS = ("task", "run_dir", "runs", "teacher", "resume", "ckpt_path", "allow_unsafe_checkpoint", "images",
                "submission", "answers", "paths", "hydra", "hparams_search", "debug", "progress", "extras",
                "data.root", "data.csv", "data.num_workers", "data.pin_memory", "data.persistent_workers",
                "trainer.accelerator", "trainer.devices", "trainer.strategy", "trainer.num_nodes",
                "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.log_every_n_steps")
#: groups whose *choice* is this command's (the keys under them are not: ``logger.wandb.offline``
#: in a saved run is refused, ``logger=wandb`` is skipped)
COMMAND_GROUPS = frozenset({"logger", "trainer", "debug", "hparams_search", "task", "paths", "hydra"})
#: recipe keys that name a place by nature: only these values are taken from a saved run
NAMED_CHOICES: dict[str, tuple[Any, ...]] = {"data.relabel": (None, "competition"), "unlabeled": ("eval",),
                                             "ssl.unlabeled": ("eval",)}
#: a metric name (``val/f1``) is a value with a slash that names no place
_METRIC = re.compile(r"^(train|val|cv)/[A-Za-z0-9_]+$")


def under(key: str, roots: tuple[str, ...] | frozenset[str]) -> bool:
    """Whether ``key`` is one of ``roots`` or lies below one."""
    return any(key == r or key.startswith(r + ".") for r in roots)


def is_command_key(key: str, group: bool) -> bool:
    """A key this command always sets itself (or a choice of a group that is this command's)."""
    return (group and key in COMMAND_GROUPS) or (under(key, COMMAND_KEYS) and not under(key, RECIPE_KEYS))


def is_recipe_key(key: str, group: bool) -> bool:
    """Whether a saved run may set ``key`` (a group choice when ``group``)."""
    return key in RECIPE_GROUPS if group else under(key, RECIPE_KEYS)


def looks_like_place(value: Any) -> bool:
    """A string (or a list holding one) that could name a file, a folder, a URL or a host."""
    if isinstance(value, list):
        return any(looks_like_place(v) for v in value)
    if not isinstance(value, str) or _METRIC.match(value):
        return False
    return any(c in value for c in "/\\:") or value.startswith(("~", "."))


def value_refusal(key: str, value: Any) -> str | None:
    """Why a recipe key's saved ``value`` is refused (it names a place), or None."""
    for named, allowed in NAMED_CHOICES.items():
        if key == named:
            return None if value in allowed else f"{key} takes only {', '.join(map(str, allowed))} from a saved run"
    if looks_like_place(value):
        return f"{value!r} looks like a file, folder or address"
    return None
