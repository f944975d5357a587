"""LightningDataModule: layout -> person-level folds -> datasets -> loaders.

Extras on the training side only: pseudo-label rows (``pseudo_csv``), a teacher's soft targets
(``soft_targets``, under ``ssl=distill``; its unlabeled images join as rows without a label) and,
under ``ssl=uda``, an unlabeled stream of (weak, strong) views, ``unsup_ratio`` images per labeled one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, RandomSampler

from mask_cls import labels as L
from mask_cls.data import layouts, pseudo, soft_targets, transforms
from mask_cls.data.cache import ImageCache
from mask_cls.data.crop_rule import describe
from mask_cls.data.data_config import DataConfig
from mask_cls.data.datasets import ImageDataset, TwoViewDataset, collate_skipping, worker_init
from mask_cls.data.fingerprint import data_fingerprint
from mask_cls.data.folds import split
from mask_cls.data.relabel import apply_fixes
from mask_cls.data.unlabeled import unlabeled_images
from mask_cls.errors import ConfigError, DataError
from mask_cls.ssl.uda import UDA


class MaskDataModule(pl.LightningDataModule):
    """A dataset (an opened ``layouts.Layout``, or the one ``config.source`` names) split into
    person-level folds: fold ``config.folds.fold`` is validation. Built from the flat ``data``
    group by ``from_flat`` (the config's ``_target_``); its options are ``DataConfig``'s groups.

    ``config.source.synth``: when given and the root does not exist, ``prepare_data`` draws the
    synthetic dataset there first (the embedded default).
    """

    def __init__(self, config: DataConfig, layout: layouts.Layout | None = None, sampler: Callable | None = None):
        super().__init__()
        src, ld = config.source, config.loading
        config.check(layout.root if layout is not None else src.root or src.csv)
        self.config = config
        # the dataset as its layout reads it: opened by the engine (shared by a cv run's folds),
        # or here from the layout's name, root and options
        self.opened = layout is not None
        self.layout: layouts.Layout = layout if layout is not None else layouts.open(
            {"layout": src.layout, "root": src.root, "csv": src.csv, "check_images": src.check_images,
             "on_bad_image": ld.on_bad_image})
        self.root = Path(str(self.layout.root))
        self.sampler_factory = sampler
        self._views(config.augment, config.ssl)
        self.pin_memory = ld.pin_memory and torch.cuda.is_available()
        self.persistent_workers = ld.persistent_workers and ld.num_workers > 0
        # never inside the data root: the data is read, never written
        self.cache = ImageCache(ld.cache_dir or default_cache_dir(), ld.image_size) if ld.cache else None
        self.pseudo_summary: dict | None = None  # what became of the pseudo rows (metrics.json "pseudo")
        self.soft_summary: dict | None = None  # rows with a teacher's soft targets (ssl=distill)
        self.unlabeled: list[str] | None = None
        self.train_table: pd.DataFrame | None = None
        self.val_table: pd.DataFrame | None = None
        self.eval_table: pd.DataFrame | None = None
        self.fingerprint: dict[str, Any] = {}

    @classmethod
    def from_flat(cls, root: str | None = None, *, layout: layouts.Layout | str | None = None,
                  sampler: Callable | None = None, **flat: Any) -> MaskDataModule:
        """From the flat ``data`` group as the user types it (``data.batch_size=32``), or the same
        keywords in Python; ``layout``: an opened layout, or a layout's name."""
        if isinstance(layout, str):
            flat["layout"] = layout
        return cls(DataConfig.from_flat({"root": root, **flat}), layout if isinstance(layout, layouts.Layout) else None,
                   sampler)

    # the options other code reads, by their config names
    image_size = property(lambda self: self.config.loading.image_size)
    num_workers = property(lambda self: self.config.loading.num_workers)
    on_bad_image = property(lambda self: self.config.loading.on_bad_image)
    n_folds = property(lambda self: self.config.folds.n_folds)
    fold = property(lambda self: self.config.folds.fold)
    split_seed = property(lambda self: self.config.folds.split_seed)

    @property
    def batch_size(self) -> int:
        return self.config.loading.batch_size

    @batch_size.setter
    def batch_size(self, size: int) -> None:
        """Settable, as Lightning's batch-size finder sets it (the loaders read it when built)."""
        self.config = replace(self.config, loading=replace(self.config.loading, batch_size=int(size)))

    def rows(self, side: str) -> pd.DataFrame:
        """The ``train``, ``val`` or ``eval`` table, once ``setup`` has read it."""
        table = {"train": self.train_table, "val": self.val_table, "eval": self.eval_table}[side]
        if table is None:
            raise RuntimeError(f"the {side} table is read by setup(); call it first")
        return table

    def _views(self, augment: Mapping[str, Any], ssl: Mapping[str, Any] | None) -> None:
        """The image pipelines: training, validation and, under UDA, its weak and strong views."""
        size = self.config.loading.image_size
        self.train_tf = transforms.build(size, augment.get("train"))
        self.val_tf = transforms.build(size, augment.get("val"))
        self.unlabeled_source = str((ssl or {}).get("unlabeled", "eval"))
        self.ssl = ssl if ssl and ssl.get("name", "none") == "uda" else None  # (distill: soft targets, no stream)
        uda = UDA.from_config(self.ssl) if self.ssl else None
        self.unsup_ratio = uda.unsup_ratio if uda else 0  # its default in one place (ssl/uda.py)
        if self.ssl is not None:
            self.weak_tf = transforms.build(size, self.ssl.get("weak"))
            self.strong_tf = transforms.build(size, self.ssl.get("strong"))

    def prepare_data(self) -> None:
        if self.opened:  # the opener drew the synthetic default, if it is one
            if not self.root.exists():
                raise DataError(f"{self.root}: data.root not found")
            return
        if self.config.source.synth is not None:
            from mask_cls.data.synthetic import ensure

            ensure(self.root, self.config.source.synth)
        elif not self.root.exists():
            raise DataError(f"{self.root}: data.root not found")

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_table is None:
            table = self.layout.read_train()
            self.fingerprint = data_fingerprint(table, self.root)  # of the whole table as read (manifest.json)
            self.fingerprint["photos"] = describe(self.root, list(table["image"]))  # how they are framed
            rows = self.config.rows
            if not table.attrs.get("ages_known", True) and (rows.age_threshold != L.AGE_OLD_FROM or rows.drop_ages):
                raise ConfigError(f"{self.layout.options.get('csv')}: labels only, no ages: data.age_threshold and data.drop_ages "
                                  "need an age column")
            # folds depend only on the persons as given and split_seed: a relabel, an age
            # threshold or a drop list never moves a person to another fold
            train, self.val_table = split(table, self.n_folds, self.fold, self.split_seed)
            warn_unnoticed(table, self.val_table, self.fold)
            if rows.relabel:  # corrections train the model; validation is scored on the labels as given
                train = apply_fixes(train, rows.relabel, self.root)
            self.train_table = training_labels(train, rows.age_threshold, rows.drop_ages)
            if rows.pseudo_csv:
                source = self.unlabeled_source
                csv = pseudo.source_csv(rows.pseudo_csv, self.fold, self.n_folds, self.split_seed,
                                        self.val_table["person"])
                found = pseudo.read_pseudo(csv, [self.root] + ([source] if source != "eval" else []))
                self.train_table, self.pseudo_summary = pseudo.merge(self.train_table, self.val_table, found,
                                                                     rows.pseudo_weight, source=str(csv))
            if rows.soft_targets:
                source = self.unlabeled_source
                found = soft_targets.read_soft_targets(rows.soft_targets,
                                                       [self.root] + ([source] if source != "eval" else []))
                self.train_table, self.soft_summary = soft_targets.attach(self.train_table, self.val_table, found,
                                                                          rows.soft_targets)
            if self.ssl is not None:
                unlabeled = unlabeled_images(self.ssl.get("unlabeled", "eval"), self.layout)
                self.unlabeled = without_validation(unlabeled, self.val_table)
        if stage in (None, "predict") and self.eval_table is None:
            self.eval_table = self.layout.read_eval()
            if self.eval_table is None:
                raise DataError(f"{self.root / 'eval' / 'info.csv'}: no eval set to predict")

    def _loader(self, ds: ImageDataset, shuffle: bool, sampler=None, batch_size: int | None = None,
                drop_single: bool = False) -> DataLoader:
        size = batch_size or self.batch_size
        n = len(sampler) if sampler is not None else len(ds)
        return DataLoader(
            ds, batch_size=size, shuffle=shuffle and sampler is None, sampler=sampler,
            # a last training batch of one image breaks BatchNorm layers (model.neck): dropped
            drop_last=drop_single and n % size == 1 and n > 1, collate_fn=collate_skipping,
            num_workers=self.num_workers, pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers, worker_init_fn=worker_init,
        )

    def train_dataloader(self) -> DataLoader | CombinedLoader:
        t = self.rows("train")
        sampler = self.sampler_factory(t) if self.sampler_factory is not None else None
        weights = t["weight"] if "weight" in t else None
        soft = t[L.PROB_COLUMNS].to_numpy(np.float32) if self.soft_summary is not None else None
        if soft is not None and sampler is not None and (t["label"] < 0).any():
            raise ConfigError("ssl=distill with unlabeled rows: the sampler reads labels they do not have; "
                              "use sampler=shuffle")
        labeled = self._loader(self._dataset(t["image"], t["label"], self.train_tf, weights, soft), True, sampler,
                               drop_single=True)
        if self.unlabeled is None:
            return labeled
        # one unlabeled batch (unsup_ratio x larger) per labeled batch, fresh permutations
        # of the unlabeled images as often as the epoch needs
        ds = TwoViewDataset(self.unlabeled, self.weak_tf, self.strong_tf, self.cache, self.on_bad_image,
                            target_size=self.image_size)
        size = self.batch_size * self.unsup_ratio
        u_sampler = RandomSampler(ds, replacement=False, num_samples=len(labeled) * size)
        unlabeled = self._loader(ds, True, u_sampler, batch_size=size)
        return CombinedLoader({"labeled": labeled, "unlabeled": unlabeled}, mode="max_size_cycle")

    def val_dataloader(self) -> DataLoader:
        t = self.rows("val")
        ds = self._dataset(t["image"], t["label"], self.val_tf)
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            # every validation image exactly once over all processes: Lightning's default
            # sampler pads the last process with repeated images, which then count twice
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(ds, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                                   shuffle=False)
            return self._loader(ds, False, sampler)
        return self._loader(ds, False)

    def _dataset(self, paths, labels, tf, weights=None, soft=None) -> ImageDataset:
        return ImageDataset(paths, labels, tf, self.cache, self.on_bad_image, weights, target_size=self.image_size,
                            soft=soft)


def warn_unnoticed(table: pd.DataFrame, val: pd.DataFrame, fold: int) -> None:
    """What a user would not notice in the numbers: ages under 18, a single mask state (6 of the
    18 classes), classes that this fold's validation side lacks (their F1 is 0 or undefined)."""
    import logging

    warn = logging.getLogger("mask_cls").warning
    if table.attrs.get("ages_known", True):
        young = table.loc[table["age"] < 18, "person"].nunique()
        if young:
            warn("%d person(s) younger than 18 in the data (the competition's ages start at 18): check the age column",
                 young)
    masks = sorted(int(m) for m in table["mask"].unique())
    if len(masks) == 1:
        warn("every image has mask state %s: only 6 of the 18 classes can be learned or predicted",
             L.MASK_NAMES[masks[0]])
    absent = sorted(set(range(L.NUM_CLASSES)) - {int(c) for c in val["label"].unique()})
    if absent:
        warn("fold %d: %d class(es) have no validation image (%s): their F1 counts as 0 in macro F1", fold,
             len(absent), ", ".join(L.class_name(c) for c in absent[:6]) + (" ..." if len(absent) > 6 else ""))


def without_validation(paths: list[str], val: pd.DataFrame) -> list[str]:
    """The unlabeled images minus this fold's validation images (a leak: the consistency loss
    would fit them), their number logged."""
    import logging

    leak = pseudo.among(pd.Series(paths, dtype=object), val["image"]).to_numpy()
    kept = [p for p, v in zip(paths, leak) if not v]
    if len(kept) < len(paths):
        logging.getLogger("mask_cls").warning("unlabeled stream: %d validation image(s) of this fold left out",
                                              len(paths) - len(kept))
    if not kept:
        raise DataError("the unlabeled stream holds only validation images of this fold")
    return kept


def default_cache_dir() -> Path:
    """``data.cache_dir=null``: the user's cache folder (``$XDG_CACHE_HOME/mask_cls``)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mask_cls"


def training_labels(train: pd.DataFrame, age_threshold: int, drop_ages: Sequence[int]) -> pd.DataFrame:
    """The training side only: ages >= ``age_threshold`` count as the oldest group, and
    ``drop_ages`` leave. Validation keeps the true <30 / 30-59 / >=60 labels."""
    t = train[~train["age"].isin(list(drop_ages))].reset_index(drop=True)
    if age_threshold != L.AGE_OLD_FROM:
        t = t.assign(label=L.encode(t["mask"].to_numpy(), t["gender"].to_numpy(),
                                    L.age_group(t["age"].to_numpy(), old_from=age_threshold)))
    return t
