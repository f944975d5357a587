"""Losses and heads checked against independent implementations (kornia, torch, PML)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from kornia.losses import focal_loss as kornia_focal
from pytorch_metric_learning.losses import ArcFaceLoss

from mask_cls import labels as L
from mask_cls.losses.focal import FocalLoss
from mask_cls.losses.smoothing import SmoothingCrossEntropy
from mask_cls.losses.weights import class_weights
from mask_cls.models.heads import ArcFaceHead, MultiTaskHead
from mask_cls.models.heads.arcface import class_margins
from mask_cls.models.pooling import GeM

SHAPES = [(1, 2), (7, 3), (32, 18), (64, 5)]


def _inputs(n, c, seed):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, c, generator=g) * 3).requires_grad_()
    target = torch.randint(0, c, (n,), generator=g)
    weight = torch.rand(c, generator=g) + 0.2
    return logits, target, weight


@pytest.mark.parametrize("n,c", SHAPES)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_focal_matches_kornia(n, c, gamma, weighted):
    logits, target, weight = _inputs(n, c, seed=n * c)
    w = weight if weighted else None
    ours = FocalLoss(gamma=gamma, weight=w)(logits, target)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = kornia_focal(logits, target, alpha=None, gamma=gamma, reduction="none", weight=w)
    ref = (ref.sum(1) if ref.ndim == 2 else ref).mean()  # per-sample loss, mean over the batch
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-7)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_focal_gamma_zero_is_cross_entropy_and_alpha_scales():
    logits, target, _ = _inputs(16, 18, 0)
    assert FocalLoss(gamma=0)(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)
    assert FocalLoss(gamma=2, alpha=0.25)(logits, target).item() == pytest.approx(
        0.25 * FocalLoss(gamma=2)(logits, target).item(), rel=1e-6)


def test_focal_per_class_alpha_against_numpy():
    """alpha[c] multiplies the focal term of the rows of class c (the published per-class form)."""
    logits, target, _ = _inputs(32, 18, 7)
    alpha = np.linspace(0.1, 2.0, 18)
    lp = logits.detach().double().numpy()
    logp = lp - lp.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    lt = logp[np.arange(32), target.numpy()]
    ref = np.mean(-alpha[target.numpy()] * (1 - np.exp(lt)) ** 2 * lt)
    assert FocalLoss(gamma=2, alpha=alpha.tolist())(logits, target).item() == pytest.approx(ref, rel=1e-5)
    assert FocalLoss(gamma=2, alpha=alpha[::-1].tolist())(logits, target).item() != pytest.approx(ref, rel=1e-3)


@pytest.mark.parametrize("n,c", SHAPES)
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_smoothing_matches_torch(n, c, eps, weighted):
    logits, target, weight = _inputs(n, c, seed=n + c)
    w = weight if weighted else None
    ours = SmoothingCrossEntropy(epsilon=eps, weight=w)(logits, target)
    (g_ours,) = torch.autograd.grad(ours, logits)
    ref = F.cross_entropy(logits, target, weight=w, label_smoothing=eps)
    (g_ref,) = torch.autograd.grad(ref, logits)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    assert torch.allclose(g_ours, g_ref, atol=1e-6)


def test_class_weights():
    counts = [100, 10, 1, 0]
    w = class_weights(counts, "inverse_log1p").numpy()
    ref = 1 / np.log1p(np.maximum(counts, 1))
    np.testing.assert_allclose(w, ref / ref.mean(), rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    inv = class_weights(counts, "inverse").numpy()
    assert inv[2] / inv[0] == pytest.approx(100)
    assert class_weights(counts, "none") is None


@pytest.mark.parametrize("n,d", [(8, 16), (33, 64), (4, 8)])
@pytest.mark.parametrize("s,m", [(30.0, 0.5), (64.0, 0.3), (45.0, 0.5)])
def test_arcface_matches_pytorch_metric_learning(n, d, s, m):
    c = L.NUM_CLASSES
    g = torch.Generator().manual_seed(n * d)
    x = torch.randn(n, d, generator=g)
    target = torch.randint(0, c, (n,), generator=g)
    w = torch.randn(c, d, generator=g)
    x[0] = -w[target[0]]  # theta = pi: the monotone fallback branch
    x[1] = w[target[1]] * 0.5 + 0.1 * torch.randn(d, generator=g)  # small theta
    x = x.requires_grad_()

    head = ArcFaceHead(d, s=s, m=m).train()
    head.weight.data.copy_(w)
    (logits,) = head(x, target)
    ours = F.cross_entropy(logits, target)
    gx, gw = torch.autograd.grad(ours, (x, head.weight))

    ref_loss = ArcFaceLoss(num_classes=c, embedding_size=d, margin=math.degrees(m), scale=s)
    ref_loss.W.data.copy_(w.t())  # PML keeps (d, c) and its margin in degrees
    ref = ref_loss(x, target)
    rx, rw = torch.autograd.grad(ref, (x, ref_loss.W))
    assert ours.item() == pytest.approx(ref.item(), rel=1e-4)
    assert torch.allclose(gx, rx, atol=1e-5)
    assert torch.allclose(gw, rw.t(), atol=1e-5)


def test_arcface_head_margin_only_while_training():
    torch.manual_seed(0)
    head = ArcFaceHead(16, s=30, m=0.5)
    x, y = torch.randn(10, 16), torch.randint(0, 18, (10,))
    head.train()
    (train_logits,) = head(x, y)
    head.eval()
    (eval_logits,) = head(x, y)
    cos = F.linear(F.normalize(x), F.normalize(head.weight))
    assert torch.allclose(eval_logits, 30 * cos, atol=1e-5)
    differs = (train_logits - eval_logits).abs() > 1e-5
    assert differs.sum() == 10 and differs[torch.arange(10), y].all()  # only the targets move
    assert (train_logits[torch.arange(10), y] < eval_logits[torch.arange(10), y]).all()


def test_arcface_monotone_and_easy_margin():
    m = torch.tensor(0.5)
    from mask_cls.models.heads.arcface import add_margin

    theta = torch.linspace(0, math.pi, 200)
    cos = torch.cos(theta)[:, None]
    t = torch.zeros(200, dtype=torch.long)
    out = add_margin(cos, t, m)[:, 0]
    assert (out[1:] <= out[:-1] + 1e-6).all()  # keeps falling as theta grows
    easy = add_margin(cos, t, m, easy_margin=True)[:, 0]
    neg = cos[:, 0] <= 0
    assert torch.allclose(easy[neg], cos[neg, 0]) and torch.allclose(easy[~neg], torch.cos(theta[~neg] + 0.5), atol=1e-3)


def test_subcenters_take_the_max():
    head = ArcFaceHead(4, s=1.0, m=0.5, subcenters=3)
    with torch.no_grad():
        head.weight.copy_(torch.randn(18 * 3, 4))
        head.weight[5 * 3 + 2] = torch.tensor([1.0, 0, 0, 0])  # class 5, third centre
    head.eval()
    (logits,) = head(torch.tensor([[2.0, 0, 0, 0]]))
    assert logits[0, 5].item() == pytest.approx(1.0, abs=1e-6)
    assert logits.argmax().item() == 5


def test_per_class_margins_grow_for_rare_classes():
    counts = [1000, 100, 10, 1]
    margins = class_margins(counts, m=0.5, m_min=0.2).numpy()
    assert margins[0] == pytest.approx(0.2) and margins[-1] == pytest.approx(0.5)
    assert (np.diff(margins) > 0).all()
    assert class_margins(counts, 0.5, None).ndim == 0


def test_multitask_probs_sum_to_one_and_agree_with_task_argmax():
    torch.manual_seed(0)
    head = MultiTaskHead(8)
    outs = head(torch.randn(50, 8) * 3)
    p = head.probs(outs)
    assert p.shape == (50, 18)
    assert torch.allclose(p.sum(1), torch.ones(50), atol=1e-6)
    m, g, a = (o.argmax(1) for o in outs)
    assert torch.equal(p.argmax(1), torch.as_tensor(L.encode(m.numpy(), g.numpy(), a.numpy())))
    # and the marginals of the joint are the per-task softmaxes
    assert torch.allclose(p.view(50, 3, 2, 3).sum((2, 3)), outs[0].softmax(1), atol=1e-6)


def test_gem_pooling():
    x = torch.rand(2, 4, 5, 6) + 0.1
    assert torch.allclose(GeM(p=1.0)(x), x.mean((2, 3)), atol=1e-5)
    assert torch.allclose(GeM(p=3.0)(x), (x**3).mean((2, 3)) ** (1 / 3), atol=1e-5)
    assert (GeM(p=8.0)(x) > GeM(p=3.0)(x)).all() and (GeM(p=8.0)(x) <= x.amax((2, 3))).all()
    assert GeM().p.requires_grad
