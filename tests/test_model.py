import math
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import DataLoader, TensorDataset

from mask_cls.checkpoint_io import load_checkpoint
from mask_cls.errors import ConfigError
from mask_cls.models.backbone import create_backbone
from mask_cls.module import MaskClassifier
from tests.conftest import conf_group as _conf
from tests.conftest import module_config as _module_config


def test_local_weights_file_is_loaded(tmp_path):
    src = create_backbone("resnet10t")
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()
    state = src.state_dict() | {"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)}
    torch.save(state, tmp_path / "w.pth")
    loaded = create_backbone("resnet10t", weights=str(tmp_path / "w.pth"))
    for k, v in src.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    fresh = create_backbone("resnet10t")
    assert not torch.equal(fresh.state_dict()["conv1.0.weight"], src.state_dict()["conv1.0.weight"])


def test_missing_weights_file_and_unknown_backbone(tmp_path):
    with pytest.raises(ConfigError, match="model.weights=.*file not found"):
        create_backbone("resnet10t", weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ConfigError, match="is not a timm model"):
        create_backbone("resnet_nonexistent")


def _lrs(sched_cfg: dict, steps=100, epochs=10, lr=0.1):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    trainer = SimpleNamespace(estimated_stepping_batches=steps, max_epochs=epochs)
    out = instantiate(sched_cfg, _partial_=True)(opt, trainer)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        out["scheduler"].step()
    return out, lrs


def test_cosine_warmup_then_decay_to_floor():
    out, lrs = _lrs({"_target_": "mask_cls.lr_schedules.cosine", "warmup_epochs": 1, "min_lr_ratio": 0.01})
    assert out["interval"] == "step"
    assert lrs[0] == pytest.approx(0.1 / 10) and lrs[9] == pytest.approx(0.1)  # 10 warm-up steps
    t = (50 - 10) / 90
    assert lrs[50] == pytest.approx(0.1 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))))
    assert lrs[-1] == pytest.approx(0.1 * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 89 / 90))))


def test_onecycle_peaks_at_pct_start():
    _, lrs = _lrs(_conf("sched", "onecycle"))
    assert max(range(100), key=lrs.__getitem__) in (29, 30) and max(lrs) == pytest.approx(0.1)
    assert lrs[0] == pytest.approx(0.1 / 25)


def test_sgd_is_nesterov():
    opt = instantiate(_conf("optim", "sgd"), _partial_=True)(params=[torch.nn.Parameter(torch.zeros(1))])
    assert opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9


@pytest.mark.parametrize("optim,sched", [("sgd", "plateau"), ("adamw", "onecycle"), ("adamw", "none")])
def test_every_optimiser_and_schedule_trains(optim, sched, tmp_path):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8)
    y = torch.arange(32) % 18
    dl = DataLoader(TensorDataset(x, y), batch_size=8)
    module = MaskClassifier(_module_config(optim, sched))
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0)
    before = [p.detach().clone() for p in module.parameters()]
    trainer.fit(module, dl, dl)
    assert "val/f1" in trainer.callback_metrics and "val/f1_best" in trainer.callback_metrics
    assert any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))
    # the checkpoint rebuilds the same model from its saved config, with safe unpickling
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    again = load_checkpoint(str(tmp_path / "m.ckpt"))
    module.eval()
    xb = torch.randn(2, 3, 32, 32)
    assert torch.allclose(again(xb), module(xb), atol=1e-6)



@pytest.mark.parametrize("name", ["resnet10t", "mobilenetv3_small_050", "efficientnet_b0"])
def test_head_width_matches_backbone_output(name):
    """MobileNetV3 pools through a conv_head wider than num_features: the head must follow."""
    from mask_cls.models.classifier import build_classifier

    net = build_classifier({"backbone": name}, _conf("head", "linear"))
    assert net.probs(torch.randn(2, 3, 64, 48)).shape == (2, 18)
