"""Every option of every config group composes with the real config.yaml and builds what it
configures: a typo in a yaml file, a stale ``_target_`` or an argument the code no longer takes
fails here, not in a user's run (lightning-hydra-template's test_configs, per option)."""

from __future__ import annotations

import inspect
from pathlib import Path
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from hydra.utils import instantiate

from mask_cls import labels as L
from mask_cls.module import MaskClassifier
from mask_cls.module_config import ModuleConfig
from mask_cls.tasks import get_task
from tests.conftest import ROOT, compose_cfg

CONF = ROOT / "conf"
MODULE_GROUPS = ("model", "head", "loss", "optim", "sched", "experiment")
DATA_GROUPS = ("data", "augment", "sampler", "ssl", "experiment")
SMALL_NET = {"model": "resnet10t"}  # options that only pick a backbone size are built with a small one


def cases() -> list[tuple[str, str]]:
    groups = sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra", "paths"))
    return [(g, f.stem) for g in groups for f in sorted((CONF / g).glob("*.yaml"))]


def build_module(cfg) -> None:
    """The LightningModule of the option: a forward pass, the loss, the optimiser and schedule."""
    module = MaskClassifier(ModuleConfig.from_run_config(cfg, [2] * L.NUM_CLASSES))
    x, y = torch.randn(2, 3, 64, 48), torch.tensor([0, 17])
    loss = module.loss(module.net(x, y), y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert module.net.probs(x).shape == (2, L.NUM_CLASSES)
    module._trainer = SimpleNamespace(estimated_stepping_batches=10, max_epochs=2)
    opt = module.configure_optimizers()
    optimizer = opt["optimizer"] if isinstance(opt, dict) else opt
    assert isinstance(optimizer, torch.optim.Optimizer)


def build_data(cfg, tmp_path: Path) -> None:
    """The DataModule of the option, set up on the tiny set: one training batch of the right shape."""
    dm = instantiate(cfg.data, num_workers=0, persistent_workers=False, batch_size=4, cache_dir=str(tmp_path / "c"))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    images = [t for t in torch.utils._pytree.tree_leaves(batch) if isinstance(t, torch.Tensor) and t.ndim == 4]
    assert images and all(x.dtype == torch.uint8 and tuple(x.shape[1:]) == (3, *cfg.data.image_size) for x in images)


def _uniform_soft_targets(cfg, path: Path) -> Path:
    """A soft-target file (task=distill's format) with 1/18 for every training image of fold 0."""
    import pandas as pd

    split = instantiate(cfg.data, ssl=None, num_workers=0, persistent_workers=False)
    split.setup("fit")
    images = list(split.rows("train")["image"])
    pd.DataFrame({"image": images, **{c: 1 / L.NUM_CLASSES for c in L.PROB_COLUMNS}}).to_csv(path, index=False)
    return path


def build_trainer(cfg) -> None:
    """Every key a Trainer argument; built where this machine can run it (no GPU needed)."""
    node = {k: v for k, v in cfg.trainer.items() if k not in ("_target_",)}
    unknown = set(node) - set(inspect.signature(pl.Trainer.__init__).parameters)
    assert not unknown, unknown
    if cfg.trainer.accelerator != "gpu":
        assert isinstance(instantiate(cfg.trainer, logger=False, enable_checkpointing=False), pl.Trainer)


def build_each(node) -> None:
    for name, entry in (node or {}).items():
        assert instantiate(entry) is not None, name


@pytest.mark.parametrize(("group", "option"), cases(), ids=lambda v: str(v))
def test_every_option_builds(group, option, tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)  # loggers and callbacks that make folders make them here
    small = [f"model.backbone={SMALL_NET['model']}"] if group not in ("model", "experiment") else []
    data = [] if group == "data" else ["data=mask", f"data.root={tiny_root}"]
    cfg = compose_cfg(f"{group}={option}", *data, *small, out=tmp_path / "run")
    if group in MODULE_GROUPS:
        build_module(cfg)
    if group in DATA_GROUPS:
        if group == "data" and option in ("synthetic", "mask"):
            cfg.data.root = str(tiny_root)  # the drawn default set's layout, without drawing it
        if group == "data" and option == "table":  # the tiny set's images as one CSV
            from tests.test_table_layout import _write_table

            _write_table(tiny_root, tmp_path / "t.csv", absolute=True)
            cfg.data.csv, cfg.data.root = str(tmp_path / "t.csv"), str(tiny_root)
        if group == "data" and option == "folder":  # the tiny set's images as class folders
            from tests.test_folder_layout import as_folders

            cfg.data.root = str(as_folders(tiny_root, tmp_path / "folders"))
        if group == "ssl" and option == "distill":  # its training side needs a teacher's file: uniform targets
            cfg.data.soft_targets = str(_uniform_soft_targets(cfg, tmp_path / "teacher_probs.csv"))
        build_data(cfg, tmp_path)
    if group in ("trainer", "debug"):
        build_trainer(cfg)
    if group == "logger":
        build_each(cfg.logger)
    if group == "callbacks":
        build_each(cfg.callbacks)
    if group == "task":
        assert callable(get_task(cfg.task.name)) and cfg.task.name == option
    if group == "hparams_search":
        assert cfg.task.optimized_metric


def test_every_task_module_registers_its_own_name_and_has_a_config():
    from mask_cls.tasks import REGISTRY, known

    for name in known():
        get_task(name)
        assert (CONF / "task" / f"{name}.yaml").is_file(), name
    assert sorted(REGISTRY) == known()


def test_every_head_keeps_the_contract_and_has_a_config():
    """Each head subclasses Head, one loss weight per output, 18-class probabilities summing to 1."""
    from mask_cls.models.heads import HEADS, Head, registry

    for cls in HEADS:
        assert issubclass(cls, Head)
        head = cls(in_features=8, class_counts=[3] * L.NUM_CLASSES)
        outs = head(torch.randn(4, 8), torch.arange(4))
        assert len(outs) == len(head.outputs) == len(head.loss_weights)
        p = head.probs(outs)
        assert p.shape == (4, L.NUM_CLASSES) and torch.allclose(p.sum(1), torch.ones(4), atol=1e-5)
        assert torch.allclose(head.log_probs(outs).exp(), p, atol=1e-5)
    targets = {_yaml(f)["_target_"] for f in (CONF / "head").glob("*.yaml")}
    assert targets == set(registry().entries) == {f"{c.__module__}.{c.__name__}" for c in HEADS}


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def test_a_new_loss_or_head_is_one_file_and_one_config(tmp_path, monkeypatch):
    """A file dropped into mask_cls/losses (here: a folder added to the package's path) is
    found by its config's _target_ with no list to extend; anything that is not a criterion of
    that package (its base, a module, a name outside it) is still refused."""
    import sys

    import torch.nn.functional as F

    import mask_cls.losses
    from mask_cls.errors import ConfigError
    from mask_cls.losses import build_criterion
    from mask_cls.models.heads import registry as heads

    (tmp_path / "half_ce.py").write_text(
        "from mask_cls.losses.ce import CrossEntropy\n\n\n"
        "class HalfCE(CrossEntropy):\n"
        "    def per_example(self, logits, target):\n"
        "        loss, norm = super().per_example(logits, target)\n"
        "        return loss / 2, norm\n")
    monkeypatch.setattr(mask_cls.losses, "__path__", [*mask_cls.losses.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "mask_cls.losses.half_ce", raising=False)
    logits, y = torch.randn(5, 18, generator=torch.Generator().manual_seed(0)), torch.arange(5)
    loss = build_criterion({"_target_": "mask_cls.losses.half_ce.HalfCE"}, None)(logits, y)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item() / 2, rel=1e-6)
    for target in ("mask_cls.losses.base.Criterion", "mask_cls.losses.half_ce.F", "mask_cls.losses.ce.torch",
                   "os.system", "mask_cls.losses.ce.CrossEntropy.__init__", "mask_cls.module.MaskClassifier"):
        with pytest.raises(ConfigError, match="not one of this project's loss options") as e:
            build_criterion({"_target_": target}, None)
        assert "mask_cls.losses.half_ce.HalfCE" in str(e.value)  # the new plugin is listed by the scan
    # heads by file path too: the same class as the shipped name
    from mask_cls.models.heads import ArcFaceHead

    assert heads().lookup("mask_cls.models.heads.arcface.ArcFaceHead") is ArcFaceHead
    with pytest.raises(ConfigError):
        heads().lookup("mask_cls.models.heads.base.Head")
    # the spellings checkpoints written before the scan carry still name the same objects
    from mask_cls import lr_schedules

    assert heads().lookup("mask_cls.models.heads.ArcFaceHead") is ArcFaceHead
    assert lr_schedules.registry().lookup("mask_cls.optim.cosine") is lr_schedules.cosine
    assert set(lr_schedules.registry().entries) == {f"mask_cls.lr_schedules.{n}" for n in
                                                    ("cosine", "onecycle", "plateau", "constant")}
