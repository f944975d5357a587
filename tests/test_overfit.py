"""Every head and every loss trains: the loss on one tiny batch falls by at least half in a few
dozen steps (each head and each loss once, with the neck, GeM, multi-sample dropout and class
weights on; the losses themselves are checked against independent code in test_losses.py)."""

import pytest
import torch

from mask_cls.models.classifier import build_classifier
from mask_cls.module import MaskClassifier
from tests.conftest import conf_group as _conf
from tests.conftest import module_config as _module_config

HEADS = ["linear", "arcface", "multitask"]
LOSSES = ["ce", "smoothing", "focal"]


@pytest.mark.parametrize("head,loss", list(zip(HEADS, LOSSES)))
def test_head_and_loss_overfit_a_batch(head, loss):
    torch.manual_seed(0)
    cfg = _module_config()
    cfg["head"] = _conf("head", head)
    cfg["loss"] = _conf("loss", loss) | {"class_weights": "inverse_log1p"}
    cfg["model"] |= {"pooling": "gem", "neck": 64, "dropout": 0.1, "dropout_samples": 2}
    y = torch.arange(16) % 18
    counts = torch.bincount(y, minlength=18).tolist()
    module = MaskClassifier(cfg | {"class_counts": counts}).train()
    x = torch.randn(16, 3, 32, 32)
    opt = torch.optim.Adam(module.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss_value = module.loss(module.net(x, y), y)
        opt.zero_grad()
        loss_value.backward()
        opt.step()
        losses.append(loss_value.item())
    assert min(losses[-5:]) < 0.5 * losses[0], losses[::5]
    module.eval()
    assert (module(x).argmax(1) == y).float().mean() > 0.8


def test_multi_sample_dropout_averages_n_masks():
    torch.manual_seed(0)
    net = build_classifier({"backbone": "resnet10t", "dropout": 0.5, "dropout_samples": 4},
                           _conf("head", "linear")).train()
    net.backbone.eval()  # keep BatchNorm statistics out of the comparison
    x = torch.randn(3, 3, 32, 32)
    torch.manual_seed(1)
    (out,) = net(x)
    torch.manual_seed(1)
    f = net.features(x)
    manual = torch.stack([net.head.fc(torch.nn.functional.dropout(f, 0.5)) for _ in range(4)]).mean(0)
    assert torch.allclose(out, manual, atol=1e-5)
    net.eval()  # at inference one pass, no dropout
    (a,), (b,) = net(x), net(x)
    assert torch.equal(a, b) and torch.allclose(a, net.head.fc(net.features(x)), atol=1e-6)
