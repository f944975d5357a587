"""The benchmarks run (tiny mode) so they cannot rot; speed is never asserted here."""

import json
import sys
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import pytest
import torch
from albumentations.pytorch import ToTensorV2

from mask_cls.data import transforms
from mask_cls.data.datasets import ImageDataset
from mask_cls.models.preprocessor import normalize
from tests.conftest import ROOT
from tests.inprocess import run_script


@pytest.mark.slow
@pytest.mark.parametrize("script", ["loader", "train_step", "predict", "gpu", "semi_supervised", "startup",
                                    pytest.param("parallel_runs", marks=pytest.mark.spawns),
                                    "check_rows", "export", "facecrop", "resize"])
def test_bench_quick(script):
    """Each script in the test process (its imports paid once per worker). Those whose figure is how
    processes start or run side by side (startup, parallel_runs) start the processes they time
    with ``Popen``, cold, as a user does; only a ``subprocess.run`` of run.py that prepares them
    (startup's finished run) is a forked child."""
    r = run_script(ROOT / "bench" / f"{script}.py", ["--quick"], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "machine:" in r.stdout and "1.00x" in r.stdout


@pytest.mark.slow
def test_gpu_check_cpu_fallback(tmp_path):
    """``make gpu-check`` without a GPU: every step runs tiny on the CPU and the table says so."""
    r = run_script(ROOT / "bench" / "gpu_check.py", ["--quick", "--out", str(tmp_path)], ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "no GPU (CPU fallback)" in r.stdout
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("  ")]
    assert len(lines) == 4 and all(" ok " in ln or "skipped" in ln for ln in lines), lines
    assert "submission identical to the run's own: True" in r.stdout


def test_device_normalisation_equals_worker_normalisation(tmp_path):
    """uint8 from the worker + normalize on the device == float normalisation in the worker."""
    rng = np.random.default_rng(0)
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), rng.integers(0, 256, (100, 80, 3), dtype=np.uint8))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    x, _ = ImageDataset([str(path)], None, transforms.build([64, 48]))[0]
    ours = normalize(x[None], mean, std)[0]
    worker = A.Compose([A.Resize(64, 48), A.Normalize(mean=mean, std=std), ToTensorV2()])
    img = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    ref = worker(image=img)["image"]
    assert ours.shape == ref.shape and torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.slow
def test_recipes_quick_scores_each_arm_on_the_answers(tiny_root, tmp_path):
    """bench/recipes.py: one row per arm and seed, each the macro F1 of that arm's own submission."""
    import pandas as pd
    from sklearn.metrics import f1_score

    out = tmp_path / "rec"
    r = run_script(ROOT / "bench" / "recipes.py", [str(tiny_root), "--answers", str(tiny_root / "eval_answers.csv"),
                   "--out", str(out), "--arms", "default,plain,pseudo,no_tta,pseudo_t0.98,best_uncalibrated,face_crop",
                   "--seeds", "0", "--quick"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    results = pd.read_csv(out / "results.csv")
    assert sorted(results.arm) == ["best_uncalibrated", "default", "face_crop", "no_tta", "plain", "pseudo",
                                   "pseudo_t0.98"]
    assert "machine:" in r.stdout
    # each row says which model made the submission and whether it was calibrated: like is paired with like
    kinds = results.set_index("arm")[["kept", "calibrated"]]
    assert kinds.loc["plain"].tolist() == ["best", False] and kinds.loc["default"].tolist() == ["best", True]
    assert bool(kinds.loc["no_tta", "calibrated"])  # task=predict applied the default run's temperatures
    # keep_last's like-with-like reference: the default run's own best model, its temperature not applied
    assert kinds.loc["best_uncalibrated"].tolist() == ["best", False]
    # a prepared arm trains on its face-cropped copy (made once per regime), its prepare run beside the seed's run
    crop_run = next((out / "runs" / "scratch" / "face_crop").glob("seed0*"))
    assert (crop_run.parent / f"prepare_{crop_run.name}").is_dir() and not (crop_run / "prepare").exists()
    crop_cfg = (crop_run / ".hydra" / "overrides.yaml").read_text()
    assert f"data.root={crop_run.parent / 'data'}" in crop_cfg
    uncal = next((out / "runs" / "scratch" / "best_uncalibrated").glob("seed0*"))
    assert json.loads((uncal / "predict.json").read_text())["models"] == json.loads(
        (next((out / "runs" / "scratch" / "no_tta").glob("seed0*")) / "predict.json").read_text())["models"]
    assert "pseudo-labels of each round" in r.stdout
    assert (out / "recipes_scratch.png").read_bytes()[:4] == b"\x89PNG"  # the differences at a glance
    key = pd.read_csv(tiny_root / "eval_answers.csv").set_index("ImageID")["ans"]
    for arm, f1 in zip(results.arm, results.f1):
        run = next((out / "runs" / "scratch" / arm).glob("seed0*"))
        sub = pd.read_csv((run / "student" if arm.startswith("pseudo") else run) / "submission.csv")
        assert f1 == pytest.approx(f1_score(key.loc[sub.ImageID], sub.ans, average="macro"), abs=1e-9)
    # the pseudo round's teacher is the default arm's run of the same seed, not a second training
    pseudo_run = next((out / "runs" / "scratch" / "pseudo").glob("seed0*"))
    meta = json.loads((pseudo_run / "labels" / "pseudo.json").read_text())
    models = meta["models"]
    assert not (pseudo_run / "teacher").exists() and models
    # the teacher's own validation estimate of the labels' precision is reported beside the answer key's
    assert meta["validation"]["images"] > 0 and "val right" in r.stdout
    assert all(Path(m).resolve().is_relative_to((out / "runs" / "scratch" / "default").resolve()) for m in models)
    # a threshold arm: the same teacher, its labelling step alone at the arm's threshold
    strict = next((out / "runs" / "scratch" / "pseudo_t0.98").glob("seed0*")) / "labels"
    assert json.loads((strict / "pseudo.json").read_text())["models"] == models
    assert json.loads((strict / "pseudo.json").read_text())["threshold"] == 0.98 and meta["threshold"] == 0.9
    assert (pd.read_csv(strict / "pseudo.csv").confidence >= 0.98).all()
    # a prediction-only arm predicts again with the default run's model, without TTA
    no_tta = json.loads((next((out / "runs" / "scratch" / "no_tta").glob("seed0*")) / "predict.json").read_text())
    assert no_tta["tta"] == ["none"] and not (next((out / "runs" / "scratch" / "no_tta").glob("seed0*")) / "checkpoints").exists()
    assert all(Path(m).resolve().is_relative_to((out / "runs" / "scratch" / "default").resolve()) for m in no_tta["models"])
    # bench/pseudo_threshold.py with the default run as teacher: its validation predictions and
    # its eval predictions (task=predict) against the answers, every threshold counted here
    from mask_cls.labels import PROB_COLUMNS

    teacher = next((out / "runs" / "scratch" / "default").glob("seed0*"))
    r = run_script(ROOT / "bench" / "pseudo_threshold.py", [str(teacher), "--answers", str(tiny_root / "eval_answers.csv"),
                   "--out", str(tmp_path / "thr"), "--root", str(tiny_root), "--quick"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "validation estimate - answer key" in r.stdout and "the wrong labels among" in r.stdout
    assert (tmp_path / "thr" / "pseudo_threshold.png").read_bytes()[:4] == b"\x89PNG"
    curves = pd.read_csv(tmp_path / "thr" / "curves.csv")
    preds = pd.read_csv(teacher / "report" / "predictions.csv")
    probs = pd.read_csv(next((tmp_path / "thr" / "predict").iterdir()) / "probs.csv")
    for part, y, p in (("validation", preds.label.to_numpy(), preds[PROB_COLUMNS].to_numpy()),
                       ("answer key", key.loc[probs.ImageID].to_numpy(), probs[PROB_COLUMNS].to_numpy())):
        c = curves[curves.part == part]
        assert len(c) > 0 and len(y) == len(p) > 0
        for row in c.itertuples():
            m = p.max(1) >= row.threshold - 1e-9
            assert row.kept == m.sum() and row.right == pytest.approx((p[m].argmax(1) == y[m]).mean(), abs=1e-6)
    assert len(probs) == len(key)  # every eval image


@pytest.mark.slow
def test_recipes_fold_ensemble_of_a_pseudo_round(tiny_root, tmp_path):
    """real_best_ensemble: a cv run with real_best's options (the teacher) labels the eval images,
    then a cv run learns fold by fold from that fold's teacher only; the row scores its soft vote."""
    import pandas as pd
    import yaml
    from sklearn.metrics import f1_score

    out = tmp_path / "rec"
    r = run_script(ROOT / "bench" / "recipes.py", [str(tiny_root), "--answers", str(tiny_root / "eval_answers.csv"),
                   "--out", str(out), "--regime", "pretrained", "--arms", "real_best_ensemble", "--seeds", "0", "--quick"], ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    row = pd.read_csv(out / "results.csv").iloc[0]
    run = next((out / "runs" / "pretrained" / "real_best_ensemble").glob("seed0*"))
    teacher, labels, student = run / "teacher", run / "labels", run / "student"
    key = pd.read_csv(tiny_root / "eval_answers.csv").set_index("ImageID")["ans"]
    sub = pd.read_csv(student / "submission.csv")
    assert row.f1 == pytest.approx(f1_score(key.loc[sub.ImageID], sub.ans, average="macro"), abs=1e-9)
    assert row.val_f1_best == pytest.approx(json.loads((student / "cv.json").read_text())["cv/f1"])

    def config(run_dir: Path) -> dict:
        return yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())

    # the teacher is a fold ensemble of real_best's first step: Lite0, ages >= 58 as the oldest group
    assert sorted(p.name for p in teacher.glob("fold_*")) == ["fold_0", "fold_1"]
    assert config(teacher)["data"]["age_threshold"] == 58 and "lite0" in config(teacher)["model"]["backbone"]
    meta = json.loads((labels / "pseudo.json").read_text())
    assert [Path(m).parent.parent.name for m in meta["models"]] == ["fold_0", "fold_1"]
    assert meta["folds"]["n_folds"] == 2 and all((labels / f"pseudo_fold{k}.csv").is_file() for k in (0, 1))
    # the student: the same folds, each given the labels folder (so fold k reads pseudo_fold{k}.csv)
    for k in (0, 1):
        data = config(student / f"fold_{k}")["data"]
        assert Path(data["pseudo_csv"]) == labels and data["split_seed"] == 0 and data["age_threshold"] == 58


@pytest.mark.slow
def test_bn_stats_quick(tiny_root):
    r = run_script(ROOT / "bench" / "bn_stats.py", [str(tiny_root), "--quick"], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "machine:" in r.stdout and "model=lite0_pretrained" in r.stdout


def test_flops_by_hand_by_timm_and_why_not_torchs_counter():
    """bench/flops.py: a small network with a depthwise layer counted by hand; resnet50 and
    efficientnet_b0 at 224 within 10% of their published 4.1 and 0.39 GMACs; and torch's
    FlopCounterMode, which counts a depthwise convolution's backward as dense, many times over."""
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(ROOT / "bench"))
    import timm
    from flops import forward_macs, train_flops_per_image

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=8),
                        nn.Conv2d(8, 16, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    x = torch.randn(2, 3, 8, 8)
    hand = 8 * 8 * 8 * 3 * 9 + 8 * 8 * 8 * 1 * 9 + 8 * 8 * 16 * 8 + 16 * 10
    assert forward_macs(net, x) == hand and train_flops_per_image(net, x) == 6 * hand
    for name, published in (("resnet50", 4.1e9), ("efficientnet_b0", 0.39e9)):
        macs = forward_macs(timm.create_model(name).eval(), torch.randn(1, 3, 224, 224))
        assert abs(macs / published - 1) < 0.10, (name, macs)
    depthwise = nn.Conv2d(64, 64, 3, padding=1, groups=64)
    z = torch.randn(1, 64, 32, 32, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        depthwise(z).sum().backward()
    assert counter.get_total_flops() > 10 * train_flops_per_image(depthwise, z)


def test_activation_bytes_by_hand():
    """bench/flops.activation_bytes: each leaf's input and output per image, x 3, times the value size."""
    sys.path.insert(0, str(ROOT / "bench"))
    from flops import activation_bytes
    from torch import nn

    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 12, 18))
    x = torch.zeros(5, 3, 16, 12)
    conv = 3 * 16 * 12 + 8 * 16 * 12
    relu = 2 * 8 * 16 * 12
    flat = 2 * 8 * 16 * 12
    lin = 8 * 16 * 12 + 18
    assert activation_bytes(net, x, 2) == 3 * 2 * (conv + relu + flat + lin)


def test_canvas_copy_frames_each_face_at_its_recorded_box(tiny_root, tmp_path):
    """bench/canvas.py: same layout and tables (no answer key), every image a 384x512 frame whose
    recorded box holds the face photo, and the same copy whichever run writes it."""
    sys.path.insert(0, str(ROOT / "bench"))
    from canvas import build

    a, b = build(tiny_root, tmp_path / "a"), build(tiny_root, tmp_path / "b")
    assert a.equals(b)
    assert (tmp_path / "a" / "train" / "train.csv").read_bytes() == (tiny_root / "train" / "train.csv").read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").glob("*.csv")) == ["boxes_true.csv"]
    faces = [p for p in tiny_root.rglob("*") if p.suffix in {".jpg", ".png", ".jpeg"} and cv2.imread(str(p)) is not None
             and not any(part.startswith(".") for part in p.relative_to(tiny_root).parts)]
    assert len(a) == len(faces)
    for row in a.head(4).itertuples():
        frame = cv2.imread(str(tmp_path / "a" / row.image))
        face = cv2.resize(cv2.imread(str(tiny_root / row.image)), (row.w, row.h))
        assert frame.shape == (512, 384, 3)
        inside = frame[row.y:row.y + row.h, row.x:row.x + row.w].astype(int)
        assert np.abs(inside - face).mean() < 8  # the face photo (up to JPEG), not the background
    with pytest.raises(SystemExit, match="exists"):
        build(tiny_root, tmp_path / "a")


@pytest.mark.slow
def test_facecrop_background_mode_compares_the_rules():
    r = run_script(ROOT / "bench" / "facecrop.py", ["--quick", "--background"], ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "machine:" in r.stdout and "largest  surest  sharpest" in r.stdout
