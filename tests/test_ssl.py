"""UDA: the consistency loss, TSA and ramps against closed forms written out here, the UDA
step against separate forward passes, the unlabeled stream, and a tiny run through run.py."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mask_cls import labels as L
from mask_cls.errors import ConfigError, DataError
from mask_cls.losses.consistency import sharpen, uda_consistency
from mask_cls.ssl.schedules import tsa_threshold
from mask_cls.ssl.uda import UDA
from tests.conftest import FAST, run_cli
from tests.conftest import conf_group as _conf
from tests.conftest import module_config as _module_config


def reference_consistency(weak_logits, strong_logits, beta, tau) -> float:
    """Written from the paper's definition with numpy, one image at a time."""
    total = 0.0
    for w, s in zip(weak_logits.numpy().astype(np.float64), strong_logits.numpy().astype(np.float64)):
        p = np.exp(w - w.max())
        p /= p.sum()
        if p.max() <= beta:
            continue  # counts as 0, but stays in the denominator
        q = p ** (1 / tau)
        q /= q.sum()
        log_strong = s - s.max() - np.log(np.exp(s - s.max()).sum())
        total += float((q * (np.log(q) - log_strong)).sum())
    return total / len(weak_logits)


def test_consistency_matches_the_definition():
    g = torch.Generator().manual_seed(0)
    weak, strong = torch.randn(16, 18, generator=g) * 3, torch.randn(16, 18, generator=g)
    loss, mask = uda_consistency(weak.log_softmax(1), strong.log_softmax(1), beta=0.5, tau=0.4)
    assert 0 < mask.sum() < 16  # some images above beta, some below: both branches checked
    assert loss.item() == pytest.approx(reference_consistency(weak, strong, 0.5, 0.4), rel=1e-5)


def test_masking_keeps_the_full_batch_as_denominator():
    strong = torch.zeros(4, 18)  # uniform strong predictions
    weak = torch.zeros(4, 18)
    weak[0, 3] = 10.0  # only image 0 is confident
    loss, mask = uda_consistency(weak.log_softmax(1), strong.log_softmax(1), beta=0.9, tau=1.0)
    assert mask.tolist() == [1.0, 0.0, 0.0, 0.0]
    p = weak[0].softmax(0)
    kl_0 = float((p * (p.log() - math.log(1 / 18))).sum())
    assert loss.item() == pytest.approx(kl_0 / 4, rel=1e-5)  # / 4, not / 1


def test_confidence_is_taken_before_sharpening():
    weak = torch.log(torch.tensor([[0.7] + [0.3 / 17] * 17]))
    strong = torch.zeros(1, 18)
    # sharpened with tau=0.1 the top class has p ~ 1 > beta, but the un-sharpened 0.7 decides
    assert sharpen(weak, 0.1).exp().max() > 0.99
    loss, mask = uda_consistency(weak, strong.log_softmax(1), beta=0.75, tau=0.1)
    assert mask.item() == 0 and loss.item() == 0
    loss, mask = uda_consistency(weak, strong.log_softmax(1), beta=0.65, tau=0.1)
    assert mask.item() == 1 and loss.item() > 0


def test_sharpen_is_the_normalised_power():
    p = torch.tensor([[0.5, 0.3, 0.2]])
    for tau in (1.0, 0.5, 0.25):
        q = p ** (1 / tau)
        assert torch.allclose(sharpen(p.log(), tau).exp(), q / q.sum(), atol=1e-6)
    assert torch.allclose(sharpen(p.log(), 1.0).exp(), p)  # tau = 1: unchanged


def test_no_gradient_flows_into_the_weak_target():
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(8, 18, generator=g) * 4).requires_grad_()
    logp = logits.log_softmax(1)
    loss, mask = uda_consistency(logp[:4], logp[4:], beta=0.0, tau=0.5)
    loss.backward()
    assert mask.sum() == 4
    assert torch.count_nonzero(logits.grad[:4]) == 0  # the weak rows are a constant target
    assert torch.count_nonzero(logits.grad[4:]) > 0


@pytest.mark.parametrize("schedule,alpha", [
    ("linear", lambda t: t), ("log", lambda t: 1 - math.exp(-5 * t)), ("exp", lambda t: math.exp(5 * (t - 1)))])
@pytest.mark.parametrize("k", [18, 3, 2])
def test_tsa_thresholds_at_start_middle_end(schedule, alpha, k):
    for t in (0.0, 0.5, 1.0):
        assert tsa_threshold(schedule, t, k) == pytest.approx(alpha(t) * (1 - 1 / k) + 1 / k)
    assert tsa_threshold(schedule, 1.0, k) > 0.99  # every schedule ends (nearly) keeping all
    assert tsa_threshold("none", 0.3, k) is None


def test_tsa_shapes_differ_as_published():
    # log releases labels early, exp late, linear in between
    mid = {s: tsa_threshold(s, 0.5, 18) for s in ("log", "linear", "exp")}
    assert mid["log"] > mid["linear"] > mid["exp"]
    assert tsa_threshold("linear", 0.0, 18) == pytest.approx(1 / 18)
    assert tsa_threshold("exp", 0.0, 18) == pytest.approx(math.exp(-5) * 17 / 18 + 1 / 18)


def test_ramps():
    uda = UDA(lam=2.0, ramp="linear", ramp_length=0.5)
    assert [uda.weight(t, 0, 10) for t in (0.0, 0.25, 0.5, 0.9)] == pytest.approx([0.0, 1.0, 2.0, 2.0])
    gradual = UDA(lam=2.0, ramp="gradual")
    assert [gradual.weight(0.99, e, 4) for e in (0, 1, 3)] == pytest.approx([0.0, 0.5, 1.5])
    assert UDA(lam=0.5).weight(0.0, 0, 10) == 0.5


@pytest.mark.parametrize("key,value", [("beta", 1.5), ("tau", 0), ("ramp", "cosine"), ("tsa", "square"),
                                       ("unsup_ratio", 0), ("lambda", -1)])
def test_bad_settings_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"ssl.{key}="):
        UDA.from_config({"name": "uda", key: value})
    assert UDA.from_config({"name": "none"}) is None


def _uda_module(head="linear", **ssl):
    from mask_cls.module import MaskClassifier

    cfg = _module_config()
    cfg["head"] = _conf("head", head)
    cfg["model"] = {**cfg["model"], "backbone": "mobilenetv3_small_050", "channels_last": False}
    cfg["ssl"] = {"name": "uda", "beta": 0.0, "tau": 0.5, "lambda": 0.7, **ssl}
    torch.manual_seed(0)
    return MaskClassifier(cfg)


def _simple_backbone(module) -> None:
    """A small linear backbone whose features follow the input (an untrained CNN's barely do),
    so that weak and strong predictions differ and the checks below have teeth."""
    head = module.net.head
    dim = head.fc.in_features if hasattr(head, "fc") else (
        head.weight.shape[1] if hasattr(head, "weight") else head.heads[0].in_features)
    torch.manual_seed(1)
    module.net.backbone = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d((4, 4)), torch.nn.Flatten(),
                                              torch.nn.Linear(48, dim))
    with torch.no_grad():
        module.net.backbone[2].weight.mul_(20)


def _batches(n=4, nu=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = lambda m: torch.randn(m, 3, 64, 48, generator=g)  # noqa: E731  (already normalised)
    from mask_cls.models.preprocessor import Labeled

    return Labeled(img(n), torch.randint(0, 18, (n,), generator=g)), {"weak": img(nu), "strong": img(nu)}


def test_uda_objective_equals_separate_passes():
    """One concatenated forward gives sup + lambda * consistency, with weak and strong in their
    places (eval mode: batch norm on running statistics, so rows do not interact)."""
    module = _uda_module().eval()
    _simple_backbone(module)
    labeled, unlabeled = _batches()
    with torch.no_grad():
        total = module.objective(module, {"labeled": labeled, "unlabeled": unlabeled})
        x, y = labeled.x, labeled.y
        sup = F.cross_entropy(module.net(x)[0], y)
        weak, strong = module.net(unlabeled["weak"])[0], module.net(unlabeled["strong"])[0]
    cons = reference_consistency(weak, strong, beta=0.0, tau=0.5)
    assert cons > 0.05
    assert total.item() == pytest.approx(sup.item() + 0.7 * cons, rel=1e-4)
    # swapping the views changes the loss: the order inside the forward pass matters
    with torch.no_grad():
        swapped = module.objective(module, {"labeled": labeled, "unlabeled": {"weak": unlabeled["strong"], "strong": unlabeled["weak"]}})
    assert abs((swapped - total).item()) > 0.01


def test_uda_objective_runs_one_backbone_pass_over_all_images():
    module = _uda_module().train()
    calls = []
    module.net.backbone.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    labeled, unlabeled = _batches(n=4, nu=6)
    loss = module.objective(module, {"labeled": labeled, "unlabeled": unlabeled})
    loss.backward()
    assert calls == [4 + 6 + 6] and torch.isfinite(loss)


@pytest.mark.parametrize("head", ["arcface", "multitask"])
def test_uda_objective_with_other_heads(head):
    """TSA at t = 0 (threshold 1/K per output) and the consistency of the head's 18-class
    distribution, both recomputed here from separate forward passes."""
    module = _uda_module(head, tsa="linear").eval()
    _simple_backbone(module)
    labeled, unlabeled = _batches()
    x, y = labeled.x, labeled.y
    with torch.no_grad():
        total = module.objective(module, {"labeled": labeled, "unlabeled": unlabeled})
        outs = module.net(x, y)
        wl, sl = (module.net.head.log_probs(module.net(unlabeled[v])) for v in ("weak", "strong"))
    sup = 0.0
    for name, o, lw in zip(module.net.head.outputs, outs, module.net.head.loss_weights):
        t = L.target(name, y)
        kept = o.softmax(1)[torch.arange(len(t)), t] <= 1 / o.shape[1]
        sup += lw * (F.cross_entropy(o[kept], t[kept]).item() if kept.any() else 0.0)
    cons = reference_consistency(wl, sl, beta=0.0, tau=0.5)  # log-probabilities act as logits
    assert cons > 0.01
    assert total.item() == pytest.approx(sup + 0.7 * cons, rel=1e-4, abs=1e-6)


def test_arcface_margin_never_touches_unlabeled_rows():
    module = _uda_module("arcface")
    net = module.net.eval()
    net.head.train()  # margins on, batch norm on running statistics: rows independent
    labeled, unlabeled = _batches(n=4, nu=3)
    x, y = labeled.x, labeled.y
    with torch.no_grad():
        outs_l, outs_u = module.objective.outputs(module, labeled, unlabeled["weak"], unlabeled["strong"])
        outs_l, outs_u = outs_l.target, tuple(o[:3] for o in outs_u)  # the weak view's rows
        plain_u = net.head(net.features(unlabeled["weak"]))[0]
        plain_l = net.head(net.features(x))[0]
    assert torch.allclose(outs_u[0], plain_u, atol=1e-5)  # no target, no margin
    rows = torch.arange(4)
    assert (outs_l[0][rows, y] < plain_l[rows, y] - 1e-3).all()  # the margin lowers the target logit


def test_tsa_masks_drop_examples_above_the_threshold():
    module = _uda_module(tsa="linear")
    logits = torch.full((4, 18), -5.0)
    y = torch.tensor([0, 1, 2, 3])
    logits[0, 0] = 5.0   # p_true ~ 0.99: dropped while the threshold is below it
    logits[1, 5] = 5.0   # wrong and confident: p_true tiny, kept
    (keep,), logs = module.objective.tsa_masks(module, (logits,), y, t=0.5)
    thr = 0.5 * (1 - 1 / 18) + 1 / 18
    p_true = logits.softmax(1)[torch.arange(4), y]
    assert keep.tolist() == (p_true <= thr).float().tolist() and keep[0] == 0 and keep[1] == 1
    assert logs["ssl/tsa_threshold"] == pytest.approx(thr) and float(logs["ssl/labeled_kept"]) == pytest.approx(0.75)
    loss = module.loss((logits,), y, None, (keep,))
    kept = keep.bool()
    assert loss.item() == pytest.approx(F.cross_entropy(logits[kept], y[kept]).item(), rel=1e-5)
    none = module.loss((logits,), y, None, (torch.zeros(4),))
    assert none.item() == 0.0  # all dropped: zero, not NaN


def test_two_views_and_folder_source(tiny_root, tmp_path):
    import shutil

    from mask_cls.data import transforms
    from mask_cls.data.datasets import TwoViewDataset
    from mask_cls.data.unlabeled import folder_images, unlabeled_images

    folder = tmp_path / "unl"
    src = sorted((tiny_root / "eval" / "images").iterdir())
    (folder / "a" / "b").mkdir(parents=True)
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copy(src[0], folder / "x.JPG")
    shutil.copy(src[1], folder / "a" / "b" / "y.png")
    shutil.copy(src[2], folder / "a" / "._y.png")
    shutil.copy(src[3], folder / ".ipynb_checkpoints" / "z.jpg")
    (folder / "notes.txt").write_text("not an image")
    assert folder_images(folder) == [str(folder / "a" / "b" / "y.png"), str(folder / "x.JPG")]
    from mask_cls.data import layouts

    eval_paths = unlabeled_images("eval", layouts.open({"layout": "competition", "root": tiny_root}))
    assert eval_paths == list(pd.read_csv(tiny_root / "eval" / "info.csv")["ImageID"].map(
        lambda n: str(tiny_root / "eval" / "images" / n)))
    with pytest.raises(DataError, match="unlabeled folder not found"):
        folder_images(tmp_path / "nope")
    with pytest.raises(DataError, match="no eval set"):
        unlabeled_images("eval", layouts.open({"layout": "competition", "root": tmp_path}))
    cfg = _conf("ssl", "uda")
    weak, strong = transforms.build([64, 48], cfg["weak"]), transforms.build([64, 48], cfg["strong"])
    ds = TwoViewDataset(eval_paths, weak, strong)
    item = ds[0]
    assert set(item) == {"weak", "strong"} and item["weak"].shape == item["strong"].shape == (3, 64, 48)
    assert item["weak"].dtype == torch.uint8

    def gap(d):  # mean pixel distance between the two views, over the 28 eval images
        return np.mean([float((d[i]["weak"].float() - d[i]["strong"].float()).abs().mean()) for i in range(len(d))])

    torch.manual_seed(0)
    two_weak = TwoViewDataset(eval_paths, weak, transforms.build([64, 48], cfg["weak"]))
    # the strong view is far more distorted than a second weak draw (measured: ~2.4x)
    assert gap(ds) > 1.6 * gap(two_weak)


@pytest.mark.slow
def test_uda_run_logs_each_step(tiny_root, tmp_path):
    """A tiny ssl=uda run through run.py with TSA and the multi-task head: per-step logs with
    the TSA threshold of each step, and the unlabeled stream taken from the eval set."""
    out = tmp_path / "run"
    r = run_cli("data=mask", f"data.root={tiny_root}", "ssl=uda", "ssl.tsa=linear", "ssl.unsup_ratio=2",
                "ssl.beta=0.0", "head=multitask", "trainer.log_every_n_steps=1", f"hydra.run.dir={out}", *FAST)
    assert r.returncode == 0, r.stderr[-3000:]
    log = pd.read_csv(out / "csv" / "metrics.csv")
    steps = log.dropna(subset=["ssl/sup_loss"])
    assert len(steps) == 3  # trainer.limit_train_batches=3
    for name, k in (("mask", 3), ("gender", 2), ("age", 3)):
        thr = steps[f"ssl/tsa_threshold_{name}"].to_numpy()
        assert thr == pytest.approx([tsa_threshold("linear", t, k) for t in (0.0, 0.5, 1.0)])
        assert ((steps[f"ssl/labeled_kept_{name}"] >= 0) & (steps[f"ssl/labeled_kept_{name}"] <= 1)).all()
    assert (steps["ssl/above_beta"] == 1.0).all()  # beta 0: every unlabeled image counts
    assert (steps["ssl/consistency"] > 0).all()
    assert (out / "metrics.json").is_file() and (out / "submission.csv").is_file()
