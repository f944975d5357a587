"""LightningDataModule: layout -> person-level folds -> datasets -> loaders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pandas as pd
import torch
from torch.utils.data import DataLoader

from mask_cls.data import layout, transforms
from mask_cls.data.datasets import ImageDataset, worker_init
from mask_cls.data.folds import split
from mask_cls.errors import DataError


class MaskDataModule(pl.LightningDataModule):
    """The competition layout under ``root``; fold ``fold`` of ``n_folds`` is validation.

    ``synth``: when given and ``root`` does not exist, ``prepare_data`` draws the synthetic
    dataset there first (the embedded default).
    """

    def __init__(
        self,
        root: str,
        image_size: Sequence[int] = (256, 192),
        batch_size: int = 64,
        num_workers: int = 4,
        n_folds: int = 5,
        fold: int = 0,
        split_seed: int = 42,
        augment: Mapping[str, Any] | None = None,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        check_images: bool = True,
        synth: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        self.root = Path(root)
        self.image_size = transforms.check_size(image_size)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.n_folds, self.fold, self.split_seed = n_folds, fold, split_seed
        augment = augment or {}
        self.train_tf = transforms.build(self.image_size, augment.get("train"))
        self.val_tf = transforms.build(self.image_size, augment.get("val"))
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.persistent_workers = persistent_workers and num_workers > 0
        self.check_images = check_images
        self.synth = synth
        self.train_table: pd.DataFrame | None = None
        self.val_table: pd.DataFrame | None = None
        self.eval_table: pd.DataFrame | None = None

    def prepare_data(self) -> None:
        if self.synth is not None:
            from mask_cls.data.synthetic import ensure

            ensure(self.root, self.synth)
        elif not self.root.exists():
            raise DataError(f"{self.root}: data.root not found")

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit", "validate") and self.train_table is None:
            table = layout.read_train(self.root, check_images=self.check_images)
            self.train_table, self.val_table = split(table, self.n_folds, self.fold, self.split_seed)
        if stage in (None, "predict") and self.eval_table is None:
            if not layout.has_eval(self.root):
                raise DataError(f"{self.root / 'eval' / 'info.csv'}: no eval set to predict")
            self.eval_table = layout.read_eval(self.root, check_images=self.check_images)

    def has_eval(self) -> bool:
        return layout.has_eval(self.root)

    def _loader(self, ds: ImageDataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            ds, batch_size=self.batch_size, shuffle=shuffle, drop_last=False,
            num_workers=self.num_workers, pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers, worker_init_fn=worker_init,
        )

    def train_dataloader(self) -> DataLoader:
        t = self.train_table
        return self._loader(ImageDataset(t["image"], t["label"], self.train_tf), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        t = self.val_table
        return self._loader(ImageDataset(t["image"], t["label"], self.val_tf), shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(ImageDataset(self.eval_table["image"], None, self.val_tf), shuffle=False)
