"""Gaps a mutation audit found: each test here fails on a realistic planted bug that the rest of
the suite let through (issue "Figures users can trust", list "Tests that let planted bugs
through")."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mask_cls.errors import ConfigError, DataError


@pytest.mark.parametrize("row, message", [("a.jpg,18", "label '18' is not a class"),
                                          ("a.jpg,-1", "label '-1' is not a class"),
                                          ("a.jpg,3.5", "label '3.5' is not a class")])
def test_table_labels_outside_the_classes_are_refused_with_file_and_line(tmp_path, row, message):
    from mask_cls.data import layouts

    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"x")
    csv = tmp_path / "t.csv"
    csv.write_text(f"path,label\nb.jpg,3\n{row}\n")
    with pytest.raises(DataError, match=rf"t\.csv:3: {message}"):
        layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()


@pytest.mark.parametrize("age", ["-3", "121", "nan"])
def test_table_ages_outside_0_120_are_refused_with_file_and_line(tmp_path, age):
    from mask_cls.data import layouts

    (tmp_path / "a.jpg").write_bytes(b"x")
    csv = tmp_path / "t.csv"
    csv.write_text(f"path,mask,gender,age\na.jpg,wear,male,{age}\n")
    with pytest.raises(DataError, match=rf"t\.csv:2: age '{age}' is not an age in 0..120"):
        layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()


def test_per_fold_pseudo_files_of_another_split_seed_are_refused(tmp_path):
    from mask_cls.data.pseudo import source_csv

    (tmp_path / "pseudo.json").write_text(json.dumps({"folds": {"n_folds": 3, "split_seed": 7, "kept": {}}}))
    for k in range(3):
        (tmp_path / f"pseudo_fold{k}.csv").write_text("image,label,confidence\n")
    assert source_csv(tmp_path, 1, 3, 7) == tmp_path / "pseudo_fold1.csv"
    with pytest.raises(DataError, match=r"n_folds, split_seed = \(3, 7\); this run has \(3, 42\)"):
        source_csv(tmp_path, 1, 3, 42)


def test_a_partial_state_dict_for_model_weights_is_refused(tmp_path):
    import timm

    from mask_cls.models.backbone import create_backbone

    state = timm.create_model("resnet10t", num_classes=0).state_dict()
    half = dict(list(state.items())[: len(state) // 2])
    torch.save(half, tmp_path / "half.pth")
    with pytest.raises(ConfigError, match=r"half.pth: does not fit .*missing"):
        create_backbone("resnet10t", weights=str(tmp_path / "half.pth"))
    torch.save(state, tmp_path / "whole.pth")
    assert create_backbone("resnet10t", weights=str(tmp_path / "whole.pth")) is not None


def test_the_configured_pixel_limit_overrides_one_inherited_from_an_earlier_job(monkeypatch):
    from mask_cls.data.pixel_limit import max_pixels, set_max_pixels

    monkeypatch.setenv("MASK_CLS_MAX_IMAGE_PIXELS", "10")  # what the first job of a sweep left behind
    set_max_pixels(50_000_000)
    assert max_pixels() == 50_000_000


def test_the_preprocessor_normalises_labeled_batches_as_normalize_does():
    from mask_cls.models.preprocessor import Preprocessor, normalize

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    x = torch.randint(0, 256, (4, 3, 16, 12), dtype=torch.uint8)
    y = torch.tensor([0, 5, 17, 3])
    out = Preprocessor(mean, std)((x, y))
    by_hand = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.equal(out.x, normalize(x, mean, std)) and torch.allclose(out.x, by_hand, atol=1e-5)
    assert torch.equal(out.y, y) and out.partner is None and out.lam == 1.0


def test_validation_batches_are_never_batch_augmented_while_a_trainer_validates(monkeypatch):
    """CutMix at p=1: every training batch is mixed, no validation batch (during fit or validate)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from mask_cls.models.preprocessor import BatchAugment
    from mask_cls.module import MaskClassifier
    from tests.conftest import module_config

    calls = []
    original = BatchAugment.__call__

    def spy(self, x, y):
        calls.append(trainer.training)
        return original(self, x, y)

    monkeypatch.setattr(BatchAugment, "__call__", spy)
    config = module_config() | {"augment_batch": {"cutmix": {"p": 1.0, "ratio": [0.25, 0.25]}}, "image_size": [32, 24]}
    module = MaskClassifier(config)
    data = TensorDataset(torch.randint(0, 256, (8, 3, 32, 24), dtype=torch.uint8), torch.arange(8) % 18)
    loader = DataLoader(data, batch_size=4)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, loader, loader)
    assert calls and all(calls), calls  # only training batches reached the batch augmentation
    n = len(calls)
    trainer.validate(module, loader, verbose=False)
    assert len(calls) == n
    assert np.isfinite(float(trainer.callback_metrics["val/loss"]))
