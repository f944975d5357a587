"""Pretrained weights from files: the efficientnet_pytorch converter is checked against an
independent implementation of the original network that reads the file's own names (it never
goes through the converter), and the other formats round-trip."""

from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn.functional as F

from mask_cls.errors import ConfigError
from mask_cls.models.backbone import create_backbone
from mask_cls.models.weights import lite0_file, lite_file, read_state

# EfficientNet-Lite0: (expand ratio, kernel, stride, repeats) per stage; no squeeze-excitation,
# ReLU6, BatchNorm eps 1e-3, TensorFlow "same" padding (the original's)
LITE0 = [(1, 3, 1, 1), (6, 3, 2, 2), (6, 5, 2, 2), (6, 3, 2, 3), (6, 5, 1, 3), (6, 5, 2, 4), (6, 3, 1, 1)]
#: Lite1 and Lite2 (depth x1.1 and x1.2): every stage but the first and last repeats ceil(depth x its
#: Lite0 repeats) times (the original builder's fix_head_stem); their widths are read from the file
DEPTH = {0: 1.0, 1: 1.1, 2: 1.2}


def stages(size: int) -> list[tuple[int, int, int, int]]:
    last = len(LITE0) - 1
    return [(e, k, s, r if i in (0, last) else math.ceil(DEPTH[size] * r - 1e-9)) for i, (e, k, s, r) in enumerate(LITE0)]


def same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


def reference_features(sd: dict, x: torch.Tensor, size: int = 0) -> torch.Tensor:
    """The original network, written from its paper and the file's names: pooled 1280-d features."""
    def bn(t, name):
        return F.batch_norm(t, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], False, 0.0, 1e-3)

    def conv(t, name, k, s, groups=1):
        return F.conv2d(same_pad(t, k, s), sd[f"{name}.weight"], None, s, 0, 1, groups)

    t = F.relu6(bn(conv(x, "_conv_stem", 3, 2), "_bn0"))
    i = 0
    for expand, k, stride, repeats in stages(size):
        for r in range(repeats):
            p = f"_blocks.{i}"
            s = stride if r == 0 else 1
            inp = t
            if expand != 1:
                t = F.relu6(bn(conv(t, f"{p}._expand_conv", 1, 1), f"{p}._bn0"))
            t = F.relu6(bn(conv(t, f"{p}._depthwise_conv", k, s, groups=t.shape[1]), f"{p}._bn1"))
            t = bn(conv(t, f"{p}._project_conv", 1, 1), f"{p}._bn2")
            if s == 1 and inp.shape == t.shape:
                t = t + inp
            i += 1
    t = F.relu6(bn(conv(t, "_conv_head", 1, 1), "_bn1"))
    return t.mean((2, 3))


@pytest.mark.parametrize("size, tensors, blocks", [(0, 296, 16), (1, 386, 21), (2, 386, 21)])
def test_lite_package_weights_match_the_original_network(size, tensors, blocks):
    path = lite_file(size)
    sd = read_state(path)
    found = {int(k.split(".")[1]) for k in sd if k.startswith("_blocks.")}
    assert len(sd) == tensors and found == set(range(blocks)) == set(range(sum(r for *_, r in stages(size))))
    torch.manual_seed(0)
    x = torch.randn(2, 3, 97, 75)  # odd sizes: padding differences would show
    with torch.no_grad():
        ref = reference_features(sd, x, size)
        ours = create_backbone(f"tf_efficientnet_lite{size}", weights=path).eval()(x)
        other = create_backbone(f"efficientnet_lite{size}", weights=path).eval()(x)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4), (ours - ref).abs().max()
    assert not torch.allclose(other, ref, atol=1e-2)  # symmetric padding / eps 1e-5: not the original
    # and the classifier the file carries reads ImageNet logits from those features
    logits = ref @ sd["_fc.weight"].T + sd["_fc.bias"]
    assert logits.shape == (2, 1000)


def test_each_lite_file_fits_only_its_own_network():
    with pytest.raises(ConfigError, match="does not fit|tensors in efficientnet_pytorch naming"):
        create_backbone("tf_efficientnet_lite0", weights=lite_file(2))
    with pytest.raises(ConfigError, match="does not fit|tensors in efficientnet_pytorch naming"):
        create_backbone("tf_efficientnet_lite2", weights=lite_file(1))  # same tensor count, other widths
    with pytest.raises(ConfigError, match="offline weights exist for Lite0, Lite1, Lite2"):
        lite_file(3)


def test_timm_state_dict_and_checkpoint_backbones_load(tmp_path):
    src = timm.create_model("resnet10t", num_classes=0)
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    torch.save({"net.backbone." + k: v for k, v in src.state_dict().items()} | {"net.head.fc.weight": torch.zeros(18, 512)},
               tmp_path / "raw.pth")
    torch.save({"state_dict": {"net.backbone." + k: v for k, v in src.state_dict().items()},
                "hyper_parameters": {}}, tmp_path / "run.ckpt")
    loaded = create_backbone("resnet10t", weights=str(tmp_path / "run.ckpt"))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in src.state_dict().items())
    with pytest.raises(ConfigError, match=r"does not fit .*missing .*unexpected net.backbone"):
        create_backbone("resnet10t", weights=str(tmp_path / "raw.pth"))
    with pytest.raises(ConfigError, match="tensors in efficientnet_pytorch naming"):
        create_backbone("resnet10t", weights=lite0_file())


@pytest.mark.parametrize("size", [0, 1, 2])
def test_lite_presets_compose_with_their_weights_and_normalisation(size):
    from hydra import compose, initialize_config_dir

    from mask_cls.resolvers import register
    from tests.conftest import ROOT

    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"model=lite{size}_pretrained"])
    assert cfg.model.backbone == f"tf_efficientnet_lite{size}" and cfg.model.weights == lite_file(size)
    assert f"lite{size}" in cfg.model.weights.rsplit("/", 1)[-1]
    assert list(cfg.model.normalize.mean) == [0.5, 0.5, 0.5]


def test_backbone_learning_rate_factor_and_freeze_schedule():
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from mask_cls.module import MaskClassifier
    from tests.conftest import module_config as _module_config

    torch.manual_seed(0)
    cfg = _module_config(sched="none") | {"finetune": {"backbone_lr_mult": 0.1, "freeze_epochs": 1}}
    module = MaskClassifier(cfg)
    groups = module.param_groups()
    assert groups[0]["lr"] == pytest.approx(0.1 * cfg["optim"]["lr"]) and groups[1]["lr"] == cfg["optim"]["lr"]
    x = torch.randint(0, 256, (32, 3, 32, 24), dtype=torch.uint8)
    loader = DataLoader(TensorDataset(x, torch.randint(0, 18, (32,))), batch_size=8)
    snapshots = []

    class Snap(pl.Callback):
        def on_train_epoch_end(self, trainer, m):
            snapshots.append({k: v.clone() for k, v in m.net.state_dict().items()})

    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[Snap()])
    trainer.fit(module, loader)
    backbone = [k for k in before if k.startswith("backbone.")]
    head = [k for k in before if k.startswith("head.")]
    # epoch 1 frozen: backbone weights and BatchNorm statistics untouched, the head trained
    assert all(torch.equal(snapshots[0][k], before[k]) for k in backbone)
    assert any(not torch.equal(snapshots[0][k], before[k]) for k in head)
    # epoch 2: the backbone trains (weights and running statistics move)
    assert any(not torch.equal(snapshots[1][k], snapshots[0][k]) for k in backbone if "running_mean" in k)
    assert any(not torch.equal(snapshots[1][k], snapshots[0][k]) for k in backbone if k.endswith("weight"))
