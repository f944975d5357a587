"""Every augmentation preset builds on albumentations 2.x without 'argument not valid' warnings
and returns the right shape and dtype."""

import warnings

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mask_cls.data import transforms
from tests.conftest import ROOT

PRESETS = sorted(p.stem for p in (ROOT / "conf" / "augment").glob("*.yaml"))


@pytest.mark.parametrize("name", PRESETS)
def test_preset_builds_strictly_and_keeps_shape(name):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("config", overrides=[f"augment={name}"]).augment)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # albumentations warns (only) about unknown / renamed arguments
        tf = transforms.build([64, 48], cfg["train"])
    rng = np.random.default_rng(0)
    for _ in range(20):
        img = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)
        out = transforms.to_chw_uint8(tf(image=img)["image"])
        assert out.shape == (3, 64, 48) and out.dtype == torch.uint8


def test_seed_preset_has_the_original_families():
    text = (ROOT / "conf" / "augment" / "seed.yaml").read_text()
    for t in ("HorizontalFlip", "GaussNoise", "Affine", "CLAHE", "RandomBrightnessContrast", "RandomGamma",
              "HueSaturationValue", "RGBShift", "Emboss", "RandomFog", "Perspective", "GridDistortion",
              "OpticalDistortion"):
        assert f"albumentations.{t}" in text


def test_vertical_cutmix_labels_and_lam_agree_with_pixels():
    from mask_cls.models.batch_ops.cutmix import vertical_cutmix

    g = torch.Generator().manual_seed(0)
    n, w = 6, 20
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 8, w).clone()  # image i is all i
    y = torch.tensor([0, 2, 5, 8, 11, 17])
    mixed, partner, lam = vertical_cutmix(x, y, (0.3, 0.7), generator=g)
    y2 = y[partner]
    c = round(lam * w)
    assert 0.3 <= lam <= 0.7 and lam == c / w
    for i in range(n):
        assert (mixed[i, :, :, :c] == i).all()  # left part: the image itself
        j = int(mixed[i, 0, 0, -1])  # right part: one partner, whose label is y2
        assert (mixed[i, :, :, c:] == j).all() and y2[i] == y[j]
    # pairing with the oldest age group: every partner is >= 60
    _, partner_old, _ = vertical_cutmix(x, y, pair_old=True, generator=g)
    assert (y[partner_old] % 3 == 2).all()


def test_training_step_weights_cutmix_terms_by_lam():
    """The module's own step on the Preprocessor's training batch: lam on the image's label,
    1 - lam on the partner's (lam != 1/2); outside training the Preprocessor never mixes."""
    from mask_cls.module import MaskClassifier
    from tests.conftest import module_config as _module_config

    cfg = _module_config()
    cfg["augment_batch"] = {"cutmix": {"p": 1.0, "ratio": [0.25, 0.25]}}
    torch.manual_seed(1)  # the backbone's initial weights too: not whatever tests ran before in this worker
    module = MaskClassifier(cfg).eval()  # BatchNorm on running statistics: the same logits twice
    with torch.no_grad():  # a confident head: the two labels' losses differ clearly
        for p in module.net.head.parameters():
            p.normal_(0, 3)
    torch.manual_seed(0)
    x, y = torch.randint(0, 256, (6, 3, 64, 48), dtype=torch.uint8), torch.tensor([0, 1, 2, 3, 4, 5])
    plain = module.on_after_batch_transfer((x, y))  # no trainer, so not training: never mixed
    assert plain.partner is None and plain.lam == 1.0
    batch = module.preprocess((x, y), augment=True)
    assert torch.equal(batch.x[..., :12], plain.x[..., :12])  # the left 12 columns: the image's own
    loss = module.training_step(batch, 0)
    lam, partner = batch.lam, batch.partner
    assert lam == 12 / 48 and not torch.equal(y, y[partner])
    assert torch.equal(batch.x[..., 12:], plain.x[partner][..., 12:])
    with torch.no_grad():
        logits = module.net.head_outputs(module.net.features(batch.x))[0]
    F = torch.nn.functional
    ref = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[partner])
    swapped = (1 - lam) * F.cross_entropy(logits, y) + lam * F.cross_entropy(logits, y[partner])
    assert torch.allclose(loss, ref, atol=1e-5) and not torch.allclose(ref, swapped, atol=1e-3)


def test_grid_shuffle_touches_only_chosen_mask_states():
    from mask_cls.models.batch_ops.grid_shuffle import grid_shuffle

    torch.manual_seed(0)
    x = torch.randn(12, 3, 8, 6)
    y = torch.arange(12) * 1 + torch.tensor([0, 0, 0, 0, 2, 2, 2, 2, 4, 4, 4, 4])  # labels 0..3, 6..9, 12..15
    out = grid_shuffle(x, y, grid=2, mask_states=[2], p=1.0, generator=torch.Generator().manual_seed(3))
    chosen = (y // 6) == 2
    assert torch.equal(out[~chosen], x[~chosen])
    for i in torch.nonzero(chosen).flatten():
        tiles = lambda t: sorted(t[:, r * 4:(r + 1) * 4, c * 3:(c + 1) * 3].sum().item() for r in range(2) for c in range(2))  # noqa: E731
        assert tiles(out[i]) == pytest.approx(tiles(x[i]))  # same tiles, other places
    assert not torch.equal(out[chosen], x[chosen])


def test_workers_get_different_augmentation_streams(tiny_root):
    """A copied albumentations generator would make every worker repeat the same augmentations."""
    from torch.utils.data import DataLoader

    from mask_cls.data.datasets import ImageDataset, worker_init
    from mask_cls.data.layouts.competition.tables import read_train

    path = read_train(tiny_root).image[0]
    tf = transforms.build([64, 48], [{"_target_": "albumentations.Affine", "rotate": [-30, 30], "p": 1.0}])
    torch.manual_seed(0)
    ds = ImageDataset([path] * 4, None, tf)
    batches = [b[0] for b in DataLoader(ds, batch_size=2, num_workers=2, worker_init_fn=worker_init)]
    assert not torch.equal(batches[0][0], batches[1][0])  # worker 0 and worker 1 differ
    torch.manual_seed(0)
    again = [b[0] for b in DataLoader(ImageDataset([path] * 4, None, tf), batch_size=2, num_workers=2,
                                      worker_init_fn=worker_init)]
    assert all(torch.equal(a, b) for a, b in zip(batches, again))  # and seeded runs repeat


def test_a_batch_augmentation_is_one_file_found_by_its_key(tmp_path, monkeypatch):
    """A file dropped into models/batch_ops is used under its ``augment.batch`` key, in its
    ``order`` among the shipped ones; an unknown key or two label-mixing ops are refused."""
    import sys

    import mask_cls.models.batch_ops
    from mask_cls.errors import ConfigError
    from mask_cls.models.batch_augment import BatchAugment

    (tmp_path / "invert.py").write_text(
        "from mask_cls.models.batch_ops.base import BatchOp\n\n\n"
        "class Invert(BatchOp):\n"
        "    key, order = 'invert', 5\n\n"
        "    def __call__(self, x, y):\n"
        "        return -x * self.cfg.get('scale', 1.0), None, 1.0\n")
    monkeypatch.setattr(mask_cls.models.batch_ops, "__path__", [*mask_cls.models.batch_ops.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "mask_cls.models.batch_ops.invert", raising=False)
    x, y = torch.randn(4, 3, 8, 6), torch.tensor([0, 6, 12, 13])
    out, partner, lam = BatchAugment({"invert": {"scale": 2.0}})(x, y)
    assert torch.equal(out, -2 * x) and partner is None and lam == 1.0
    aug = BatchAugment({"cutmix": {"p": 1.0}, "invert": {"scale": 1.0}, "grid_shuffle": {"p": 1.0}})
    assert [op.key for op in aug.ops] == ["grid_shuffle", "invert", "cutmix"]  # by order, not by the config's
    with pytest.raises(ConfigError, match="augment.batch.mixup: not a batch augmentation"):
        BatchAugment({"mixup": {"p": 1.0}})
