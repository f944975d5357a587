"""Regression tests of the correctness audit (issue 15): each fails on the bug it names."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mask_cls.data import transforms
from mask_cls.data.datamodule import MaskDataModule
from mask_cls.data.datasets import ImageDataset, collate_skipping
from mask_cls.errors import ConfigError
from mask_cls.losses.ce import CrossEntropy
from mask_cls.module import MaskClassifier
from tests.conftest import conf_group as _conf
from tests.conftest import module_config as _module_config


def _dm(root, **kw) -> MaskDataModule:
    dm = MaskDataModule.from_flat(str(root), image_size=[32, 24], batch_size=8, num_workers=0, n_folds=3, **kw)
    dm.setup("fit")
    return dm


# 1. a relabel never moves a person and never changes the validation truth
def test_relabel_moves_nobody_and_validation_keeps_the_given_labels(tiny_root, tmp_path):
    plain = _dm(tiny_root)
    person = plain.train_table["person"].iloc[0]
    other_val = plain.val_table["person"].iloc[0]
    fixes = tmp_path / "fixes.csv"
    fixes.write_text(f"key,field,value\n{person},age,65\n{other_val},age,65\n")
    fixed = _dm(tiny_root, relabel=str(fixes))
    assert list(fixed.val_table["image"]) == list(plain.val_table["image"])  # nobody moved
    assert list(fixed.val_table["label"]) == list(plain.val_table["label"])  # truth as given
    changed = fixed.train_table.set_index("image")["label"] != plain.train_table.set_index("image")["label"]
    assert set(fixed.train_table.set_index("image")[changed]["person"]) == {person}  # the fix trains


# 2. under DDP each validation image counts exactly once
@pytest.mark.parametrize("ranks", [3, 4])
def test_validation_sampler_never_pads_under_ddp(tiny_root, ranks):
    dm = _dm(tiny_root)
    n = len(dm.val_table)
    assert n % ranks  # a count the ranks do not divide: a padding sampler would repeat images
    seen = []
    for rank in range(ranks):
        dm.trainer = type("T", (), {"world_size": ranks, "global_rank": rank})()
        seen += list(iter(dm.val_dataloader().sampler))
    assert sorted(seen) == list(range(n))  # each once; Lightning's default sampler repeats some


# 3. the UDA stream never holds this fold's validation images
def test_unlabeled_stream_leaves_out_validation_images(tiny_root):
    folder = tiny_root / "train" / "images"
    dm = _dm(tiny_root, ssl={"name": "uda", "unlabeled": str(folder), "unsup_ratio": 1})
    val = {os.path.realpath(p) for p in dm.val_table["image"]}
    assert val and not val & {os.path.realpath(p) for p in dm.unlabeled}
    assert len(dm.unlabeled) == len(dm.train_table)


# 4. per-class focal alpha must fit each output of the head
def test_focal_alpha_length_is_checked_per_output():
    cfg = _module_config() | {"head": _conf("head", "multitask"),
                              "loss": _conf("loss", "focal") | {"alpha": [0.5] * 18}}
    with pytest.raises(ConfigError, match="loss.alpha has 18 values, but the 'mask' output has 3 classes"):
        MaskClassifier(cfg)
    cfg["head"] = _conf("head", "linear")
    module = MaskClassifier(cfg)  # 18 values for the 18-class head: fine, and used
    logits, y = torch.randn(6, 18), torch.arange(6)
    alpha = torch.linspace(0.1, 1.0, 18)
    module.criteria[0].alpha = alpha
    p = logits.softmax(1)[torch.arange(6), y]
    ref = (-alpha[y] * (1 - p) ** 2 * p.log()).mean()
    assert torch.allclose(module.criteria[0](logits, y), ref, atol=1e-6)


# 5. a skipped image is dropped, never replaced by the next one
def test_skipped_image_is_dropped_not_substituted(tiny_copy):
    from mask_cls.data.layouts.competition.tables import read_train
    from mask_cls.inference.predict import predict_paths

    paths = list(read_train(tiny_copy).image[:3])
    Path(paths[1]).write_bytes(b"garbage")
    ds = ImageDataset(paths, [0, 1, 2], transforms.build([32, 24]), on_bad_image="skip")
    batch = collate_skipping([ds[i] for i in range(3)])
    assert batch[1].tolist() == [0, 2] and ds.skipped == 1
    module = MaskClassifier(_module_config()).eval()
    probs = predict_paths(module, paths, image_size=[32, 24], on_bad_image="skip")
    assert np.isnan(probs[1]).all() and not np.isnan(probs[[0, 2]]).any()
    alone = predict_paths(module, [paths[2]], image_size=[32, 24])
    assert np.allclose(probs[2], alone[0], atol=1e-5)  # row 2 is image 2's own prediction


# 6. never a training batch of one (BatchNorm in model.neck)
def test_last_training_batch_of_one_is_dropped(tiny_root):
    dm = _dm(tiny_root)
    n = len(dm.train_table)
    dm.batch_size = n - 1  # n = (n - 1) + 1
    assert len(dm.train_dataloader()) == 1
    dm.batch_size = n - 2 if n > 3 else n
    assert len(dm.train_dataloader()) == math.ceil(n / dm.batch_size)


# 7. rows of weight 0 are the same as no rows
def test_zero_weight_rows_equal_no_rows():
    logits, y = torch.randn(8, 18), torch.randint(0, 18, (8,))
    w = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0])
    crit = CrossEntropy()
    assert torch.allclose(crit(logits, y, w), F.cross_entropy(logits[:4], y[:4]), atol=1e-6)
    halves = torch.tensor([0.5] * 8)
    assert torch.allclose(crit(logits, y, halves), F.cross_entropy(logits, y), atol=1e-6)


# 8. ArcFace + CutMix: each term carries its own target's margin; TSA reads logits without it
def test_arcface_cutmix_partner_term_has_its_own_margin():
    from mask_cls.models.preprocessor import Labeled

    torch.manual_seed(0)
    cfg = _module_config() | {"head": _conf("head", "arcface") | {"s": 10.0, "m": 0.4}}
    module = MaskClassifier(cfg).train()
    f = torch.randn(6, module.net.head.weight.shape[1])
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    partner = torch.tensor([3, 4, 5, 0, 1, 2])
    lam = 0.3
    from mask_cls.ssl.objective import labeled_outputs

    outs, outs_partner, plain = labeled_outputs(module, f, y, partner)
    loss = module.supervised_loss(outs, Labeled(f, y, None, partner, lam), outs_partner=outs_partner)

    cos = F.linear(F.normalize(f), F.normalize(module.net.head.weight)).clamp(-1 + 1e-7, 1 - 1e-7)

    def margin_logits(target):
        theta = torch.acos(cos.gather(1, target[:, None]))
        out = cos.clone()
        out.scatter_(1, target[:, None], torch.cos(theta + 0.4))
        return 10.0 * out

    ref = lam * F.cross_entropy(margin_logits(y), y) + (1 - lam) * F.cross_entropy(margin_logits(y[partner]), y[partner])
    assert torch.allclose(loss, ref, atol=1e-5)
    assert torch.allclose(plain[0], 10.0 * cos, atol=1e-5)  # no margin anywhere


def test_shipped_competition_fixes_never_touch_a_synthetic_set(tiny_root):
    from mask_cls.data.layouts.competition.tables import read_train
    from mask_cls.data.relabel import apply_fixes

    table = read_train(tiny_root)
    table.loc[0, "person"], table.loc[0, "id"] = "000020_female_Asian_54", "000020"  # an id the fixes name
    assert apply_fixes(table, "competition", tiny_root).equals(table)
    fixed = apply_fixes(table, "competition")  # on the real data (no synth.json) they apply
    assert not fixed["label"].equals(table["label"])


# 9. class counts (class weights, per-class margins) come from the labeled rows only
def test_class_counts_leave_pseudo_rows_out(tiny_root, tmp_path):
    import pandas as pd

    from mask_cls.engine import class_counts

    plain = _dm(tiny_root)
    eval_imgs = sorted(str(p) for p in (tiny_root / "eval" / "images").iterdir() if p.name[0] != ".")
    csv = tmp_path / "pseudo.csv"
    pd.DataFrame({"image": eval_imgs, "label": 17, "confidence": 0.99}).to_csv(csv, index=False)
    merged = _dm(tiny_root, pseudo_csv=str(csv))
    assert (merged.train_table["label"] == 17).sum() > (plain.train_table["label"] == 17).sum()
    assert class_counts(merged.train_table) == class_counts(plain.train_table)
