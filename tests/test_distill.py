"""Knowledge distillation: the KL term against torch's own, the objective on a real module, the
teacher's cached probabilities against an independent TTA loop, and the targets the student
trains on against that file; a teacher on other folds refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mask_cls.errors import ConfigError, DataError
from mask_cls.labels import PROB_COLUMNS
from mask_cls.losses.distillation import distillation_kl
from tests.conftest import FAST, run_cli
from tests.test_cli import best_with_hflip_tta

TWO_FOLDS = [a for a in FAST if not a.startswith("data.n_folds")] + ["data.n_folds=2"]


def test_kl_term_is_hinton_kd_as_torch_computes_it():
    """T^2 * KL(softmax(z_t/T) || softmax(z_s/T)), batch mean, as F.kl_div gives it; with weights,
    their weighted mean; the teacher given as probabilities at T = 1."""
    g = torch.Generator().manual_seed(0)
    z_s, z_t = torch.randn(5, 18, generator=g) * 3, torch.randn(5, 18, generator=g) * 3
    for t in (1.0, 2.0, 4.0):
        ours = distillation_kl((z_s / t).log_softmax(1), z_t.softmax(1), t)
        ref = F.kl_div((z_s / t).log_softmax(1), (z_t / t).softmax(1), reduction="batchmean") * t * t
        assert ours.item() == pytest.approx(ref.item(), rel=1e-4)
    w = torch.tensor([1.0, 0.0, 2.0, 1.0, 0.5])
    per = F.kl_div((z_s / 2).log_softmax(1), (z_t / 2).softmax(1), reduction="none").sum(1) * 4
    assert distillation_kl((z_s / 2).log_softmax(1), z_t.softmax(1), 2.0, w).item() == \
        pytest.approx(((per * w).sum() / w.sum()).item(), rel=1e-4)
    assert distillation_kl(z_t.log_softmax(1), z_t.softmax(1), 1.0).item() == pytest.approx(0, abs=1e-5)


def test_objective_mixes_kl_on_all_rows_and_the_loss_on_labeled_rows():
    """The module's step under ssl=distill: alpha * KL on every row + (1 - alpha) * CE on the rows
    with a label (label -1: unlabeled), computed here from the network's logits."""
    from mask_cls.module import MaskClassifier
    from tests.conftest import module_config

    cfg = module_config()
    cfg["ssl"] = {"name": "distill", "temperature": 3.0, "alpha": 0.3}
    torch.manual_seed(0)
    module = MaskClassifier(cfg).eval()  # BatchNorm on running statistics: the same logits twice
    x = torch.randint(0, 256, (6, 3, 64, 48), dtype=torch.uint8)
    y = torch.tensor([0, 5, -1, 17, -1, 3])
    soft = torch.softmax(torch.randn(6, 18) * 2, 1)
    batch = module.preprocess((x, y, torch.ones(6), soft))
    loss = module.training_step(batch, 0)
    with torch.no_grad():
        z = module.net(batch.x)[0]
    kd = F.kl_div((z / 3).log_softmax(1), (soft.log() / 3).softmax(1), reduction="batchmean") * 9
    ce = F.cross_entropy(z[y >= 0], y[y >= 0])
    assert loss.item() == pytest.approx((0.3 * kd + 0.7 * ce).item(), rel=1e-4)


@pytest.fixture(scope="module")
def distilled(cv_run, tiny_root, tmp_path_factory):
    """A 2-fold cv teacher (the shared cv run), then fold 1's student, of another backbone, distilled from it."""
    student = tmp_path_factory.mktemp("distill") / "student"
    r = run_cli("task=distill", f"teacher={cv_run}", "data=mask", f"data.root={tiny_root}", *TWO_FOLDS,
                "data.fold=1", "model.backbone=resnet10t", f"hydra.run.dir={student}")
    assert r.returncode == 0, r.stderr[-3000:]
    return cv_run, student


@pytest.mark.slow
def test_the_teacher_file_is_fold_1s_model_with_tta_uncalibrated(distilled, tiny_root):
    """Fold 1's student learns from fold 1's teacher alone (it never saw fold 1's validation
    persons): its rows for the eval images are that model's hflip-TTA probabilities *as trained*
    (its temperature was fitted on fold 1's validation persons, the student's), computed here by
    an independent loop; not fold 0's; the labeled rows are the student's training images."""
    teacher, student = distilled
    info = json.loads((student / "teacher.json").read_text())
    assert info["honest_validation"] and info["models"] == [
        str(p) for p in (teacher / "fold_1" / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt"]
    assert info["calibrated"] is False and (teacher / "fold_1" / "calibration.json").is_file()
    table = pd.read_csv(student / "teacher_probs.csv")
    eval_images = pd.read_csv(tiny_root / "eval" / "info.csv")["ImageID"]
    rows = table.set_index(table["image"].map(lambda p: p.rsplit("/", 1)[1]))
    ours = rows.loc[eval_images, PROB_COLUMNS].to_numpy()
    ref = best_with_hflip_tta(teacher / "fold_1", tiny_root, "eval", calibrated=False)
    assert np.abs(ours - ref).max() < 2e-5
    assert np.abs(ours - best_with_hflip_tta(teacher / "fold_1", tiny_root, "eval")).max() > 1e-4  # T differs
    assert np.abs(ours - best_with_hflip_tta(teacher / "fold_0", tiny_root, "eval", calibrated=False)).max() > 1e-4
    assert info["unlabeled"] == len(eval_images) and info["labeled"] == len(table) - len(eval_images)
    metrics = json.loads((student / "metrics.json").read_text())
    assert metrics["soft_targets"] == {"labeled": info["labeled"], "unlabeled": info["unlabeled"]}
    assert (student / "submission.csv").read_text().count("\n") == len(eval_images) + 1


@pytest.mark.slow
def test_the_student_trains_on_the_cached_probabilities(distilled, tiny_root):
    """The student's training set: every row's soft target is the file's row of that image (the
    eval images joining with label -1), none of the validation persons' images."""
    from mask_cls.data.datamodule import MaskDataModule

    _, student = distilled
    file = pd.read_csv(student / "teacher_probs.csv").set_index("image")
    dm = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], batch_size=8, num_workers=0, n_folds=2, fold=1,
                                  soft_targets=str(student / "teacher_probs.csv"), ssl={"name": "distill"})
    dm.setup("fit")
    ds = dm.train_dataloader().dataset
    assert len(ds) == len(file)
    for i in range(len(ds)):
        _, label, _, soft = ds[i]
        assert np.allclose(soft.numpy(), file.loc[ds.paths[i]].to_numpy(), atol=1e-6)
        assert (label == -1) == ("/eval/" in ds.paths[i])
    assert not set(ds.paths) & set(dm.rows("val")["image"])


@pytest.mark.slow
def test_a_teacher_on_other_folds_is_refused_and_an_ensemble_says_so(distilled, tiny_root):
    from mask_cls.ssl.teacher import teacher_models

    teacher, _ = distilled
    persons = ["x"]
    with pytest.raises(ConfigError, match="n_folds, split_seed"):
        teacher_models([str(teacher)], 0, 3, 42, persons)
    with pytest.raises(ConfigError, match="validation persons"):
        teacher_models([str(teacher)], 0, 2, 42, persons)
    models, honest = teacher_models([str(teacher)], 0, 3, 42, persons, fold_teacher=False)
    assert len(models) == 2 and not honest


def test_soft_targets_file_is_checked(tmp_path, tiny_root):
    """A row that is not a distribution, an image outside the roots, a validation image or a
    training image without a row: each one line naming the file."""
    from mask_cls.data.soft_targets import attach, read_soft_targets

    img = next((tiny_root / "train" / "images").rglob("*.jpg"))
    p = np.full(18, 1 / 18)

    def write(name, rows):
        f = tmp_path / name
        pd.DataFrame([{"image": i, **dict(zip(PROB_COLUMNS, v))} for i, v in rows]).to_csv(f, index=False)
        return f

    with pytest.raises(DataError, match=r"bad\.csv:2: p0\.\.p17"):
        read_soft_targets(write("bad.csv", [(str(img), p * 2)]), [tiny_root])
    sub = tmp_path / "sub"
    sub.mkdir()
    outside = tmp_path / "elsewhere.jpg"  # beside the csv's folder, not in it or the data root
    outside.write_bytes(img.read_bytes())
    with pytest.raises(DataError, match=r"out\.csv:2: image .* outside"):
        read_soft_targets(write("sub/out.csv", [(str(outside), p)]), [tiny_root])
    table = read_soft_targets(write("sub/ok.csv", [(str(img), p)]), [tiny_root])
    row = pd.DataFrame({"image": [str(img)], "person": ["a"], "label": [0]})
    with pytest.raises(DataError, match="validation images"):
        attach(row.iloc[:0], row, table, "ok.csv")
    other = next(i for i in (tiny_root / "train" / "images").rglob("*.jpg") if i != img)
    with pytest.raises(DataError, match="no soft target"):
        attach(pd.DataFrame({"image": [str(other)], "person": ["b"], "label": [1]}), row.iloc[:0], table, "ok.csv")


@pytest.mark.slow
def test_distill_mistakes_are_one_line_before_any_training(cv_run, tiny_root, tmp_path):
    """No teacher, a cv teacher on other folds, and CutMix: each one line, exit 1, nothing trained."""
    cases = [([], "task=distill needs teacher=DIR"),
             ([f"teacher={cv_run}", "data.n_folds=3"], "a cv run of n_folds, split_seed = (2, 42); this student has (3, 42)"),
             ([f"teacher={cv_run}", "augment=seed_cutmix"], "batch augmentation (CutMix, grid shuffle): not supported")]
    for i, (extra, expected) in enumerate(cases):
        out = tmp_path / f"run{i}"
        r = run_cli("task=distill", "data=mask", f"data.root={tiny_root}", *TWO_FOLDS, *extra, f"hydra.run.dir={out}")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and expected in lines[0], r.stderr[-2000:]
        assert not (out / "checkpoints").exists() and not (out / "teacher_probs.csv").exists()


def test_a_training_photo_whose_copy_validates_keeps_its_soft_target(tmp_path, tiny_root):
    """Real data has one photo under two persons: its training copy is the student's own row
    (as in every run, the split is by person), while an unlabeled copy of a validation image is
    refused (found on REALFACES: the first version refused the training copy too)."""
    from mask_cls.data.soft_targets import attach, read_soft_targets

    img = next((tiny_root / "train" / "images").rglob("*.jpg")).read_bytes()
    for name in ("train.jpg", "val.jpg", "unlabeled.jpg"):
        (tmp_path / name).write_bytes(img)  # three copies of one photo
    p = np.full(18, 1 / 18)
    f = tmp_path / "teacher_probs.csv"
    train = pd.DataFrame({"image": [str(tmp_path / "train.jpg")], "person": ["a"], "label": [4]})
    val = pd.DataFrame({"image": [str(tmp_path / "val.jpg")], "person": ["b"], "label": [4]})
    pd.DataFrame([{"image": "train.jpg", **dict(zip(PROB_COLUMNS, p))}]).to_csv(f, index=False)
    merged, summary = attach(train, val, read_soft_targets(f), str(f))
    assert summary == {"labeled": 1, "unlabeled": 0} and merged["label"].tolist() == [4]
    pd.DataFrame([{"image": n, **dict(zip(PROB_COLUMNS, p))} for n in ("train.jpg", "unlabeled.jpg")]).to_csv(f, index=False)
    with pytest.raises(DataError, match="1 unlabeled row"):
        attach(train, val, read_soft_targets(f), str(f))
