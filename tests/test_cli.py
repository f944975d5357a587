"""End-to-end runs through run.py, as a user types them."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from mask_cls.checkpoint_io import load_checkpoint
from tests.conftest import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


def best_with_hflip_tta(run, root, images: str, calibrated: bool = True) -> np.ndarray:
    """The run's best checkpoint (safe unpickling) on the ``eval`` or validation (``val``)
    images with hflip TTA, by a loop written here, not the production path (inference/predict.py,
    tta.py): the network on the normalised images, with and without a horizontal flip in the
    image pipeline, probabilities averaged."""
    from mask_cls.data.datamodule import MaskDataModule

    best = json.loads((run / "metrics.json").read_text())["best_checkpoint"]
    module = load_checkpoint(best).eval()
    calibration = run / "calibration.json"  # the run's temperatures divide each output's logits, where applied
    record = json.loads(calibration.read_text()) if calibrated and calibration.is_file() else {}
    temps = list(record["temperatures"].values()) if record.get("applied", True) and record else [1.0]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (module.preprocess.mean, module.preprocess.std))
    views = []
    for val_augs in ([], [{"_target_": "albumentations.HorizontalFlip", "p": 1.0}]):
        dm = MaskDataModule.from_flat(str(root), image_size=[64, 48], batch_size=16, num_workers=0, n_folds=3,  # FAST's folds
                            augment={"val": val_augs})
        dm.setup("predict" if images == "eval" else "fit")
        table = dm.eval_table if images == "eval" else dm.val_table
        ds = dm._dataset(table["image"], None, dm.val_tf)
        with torch.no_grad():
            x = torch.stack([ds[i][0] for i in range(len(ds))]).float() / 255
            logits = module.net((x - mean) / std)
            views.append(module.net.head.probs([z / t for z, t in zip(logits, temps)]).numpy())
    assert not np.allclose(views[0], views[1])  # the flip changes the input
    probs = (views[0] + views[1]) / 2
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    return probs


def test_train_writes_metrics_checkpoints_and_submission(trained, tiny_root):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert {"val/f1", "val/f1_best", "val/acc", "val/f1_mask", "val/f1_gender", "val/f1_age"} <= set(metrics)
    logged = pd.read_csv(trained / "csv" / "metrics.csv")["val/f1"].dropna()
    assert metrics["val/f1_best"] == pytest.approx(logged.max(), abs=1e-6)
    assert (trained / "checkpoints" / "last.ckpt").is_file()
    sub = pd.read_csv(trained / "submission.csv")
    info = pd.read_csv(tiny_root / "eval" / "info.csv")
    assert list(sub.columns) == ["ImageID", "ans"]
    assert list(sub.ImageID) == list(info.ImageID)  # same rows, same order
    assert sub.ans.between(0, 17).all() and sub.ans.dtype.kind == "i"


def test_submission_comes_from_the_best_checkpoint_with_hflip_tta(trained, tiny_root):
    """Reload the best checkpoint alone (safe unpickling) and predict the eval set with a loop
    written here, not the production path (inference/predict.py, tta.py): the network on the
    normalised images, with and without a horizontal flip in the image pipeline; their mean
    gives the answers."""
    probs = best_with_hflip_tta(trained, tiny_root, "eval")
    sub = pd.read_csv(trained / "submission.csv")
    assert (sub.ans.to_numpy() == probs.argmax(1)).all()


def test_validation_report(trained, tiny_root):
    from mask_cls.data.datamodule import MaskDataModule
    from mask_cls.labels import PROB_COLUMNS

    report = trained / "report"
    scores = json.loads((report / "scores.json").read_text())
    assert scores["tta"] == ["none", "hflip"]  # the default: the report predicts as the submission does
    table = pd.read_csv(report / "per_class.csv")
    assert len(table) == 18 and table.support.sum() == scores["n"]
    for name in ("confusion.png", "confusion_tasks.png", "reliability.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the predictions behind the report: the validation persons' images and labels, as the
    # data module splits them, with probabilities whose argmax gives the report's F1
    preds = pd.read_csv(report / "predictions.csv")
    dm = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], num_workers=0, n_folds=3)  # FAST's folds
    dm.setup("fit")
    val = dm.val_table.set_index("image")
    assert sorted(preds.image) == sorted(val.index) and len(preds) == scores["n"]
    assert (preds.label.to_numpy() == val.loc[preds.image, "label"].to_numpy()).all()
    probs = preds[PROB_COLUMNS].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert (probs.argmax(1) == preds.pred).all()
    # the best checkpoint with hflip TTA (the report is of the model as trained; its calibrated
    # twin, predictions_calibrated.csv, is what task=pseudo's estimate reads)
    expected = pd.DataFrame(best_with_hflip_tta(trained, tiny_root, "val", calibrated=False),
                            index=val.index).loc[preds.image]
    np.testing.assert_allclose(probs, expected.to_numpy(), atol=1e-5)
    assert scores["f1"] == pytest.approx(f1_score(preds.label, preds.pred, average="macro"), abs=1e-6)
    conf, right = probs.max(1), probs.argmax(1) == preds.label.to_numpy()
    ece = sum(abs(right[m].mean() - conf[m].mean()) * m.sum() for b in range(10)
              if (m := (conf > b / 10) & (conf <= (b + 1) / 10)).any()) / len(conf)
    assert scores["ece"] == pytest.approx(ece, abs=1e-6)


def test_a_run_never_overwrites_another(trained, tiny_root):
    before = (trained / "submission.csv").read_bytes()
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={trained}", *FAST)
    assert r.returncode == 1
    assert "already holds" in r.stderr
    assert (trained / "submission.csv").read_bytes() == before


def test_evaluate_matches_sklearn(trained, tiny_root, tmp_path):
    out = tmp_path / "eval"
    r = run_cli("task=evaluate", f"submission={trained / 'submission.csv'}",
                f"answers={tiny_root / 'eval_answers.csv'}", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    scores = json.loads((out / "scores.json").read_text())
    sub = pd.read_csv(trained / "submission.csv")
    ans = pd.read_csv(tiny_root / "eval_answers.csv").set_index("ImageID").loc[sub.ImageID].ans
    assert scores["f1"] == pytest.approx(f1_score(ans, sub.ans, average="macro"))
    assert scores["acc"] == pytest.approx(accuracy_score(ans, sub.ans))
    assert scores["f1_gender"] == pytest.approx(f1_score(ans // 3 % 2, sub.ans // 3 % 2, average="macro"))
    assert "f1" in r.stdout


def test_evaluate_missing_prediction(tiny_root, tmp_path):
    ans = pd.read_csv(tiny_root / "eval_answers.csv")
    ans.iloc[1:].to_csv(tmp_path / "sub.csv", index=False)
    r = run_cli("task=evaluate", f"submission={tmp_path / 'sub.csv'}",
                f"answers={tiny_root / 'eval_answers.csv'}", f"hydra.run.dir={tmp_path / 'o'}")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'sub.csv'}: 1 image(s) of {tiny_root / 'eval_answers.csv'} have no prediction "
        f"(e.g. {ans.ImageID[0]})"
    ]
    assert not (tmp_path / "o" / "scores.json").exists()


def test_synthetic_default_is_drawn_on_first_use(tmp_path):
    root = tmp_path / "syn"
    synth = ["synth.train_persons=15", "synth.eval_persons=2", "synth.image_size=[64,48]", "synth.workers=1"]
    r = run_cli(f"data.root={root}", *synth, f"hydra.run.dir={tmp_path / 'run'}", *FAST)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (root / "train" / "train.csv").is_file() and (root / "eval_answers.csv").is_file()
    assert len(pd.read_csv(tmp_path / "run" / "submission.csv")) == 14


def test_task_synth_writes_the_layout_and_refuses_to_overwrite(tmp_path):
    root = tmp_path / "s"
    args = ["task=synth", f"data.root={root}", "synth.train_persons=5", "synth.eval_persons=1",
            "synth.image_size=[48,36]", f"hydra.run.dir={tmp_path / 'run'}"]
    assert run_cli(*args).returncode == 0
    assert len(pd.read_csv(root / "train" / "train.csv")) == 5
    r = run_cli(*args[:-1], f"hydra.run.dir={tmp_path / 'run2'}")
    assert r.returncode == 1 and "already exists" in r.stderr


def test_class_counts_come_from_the_training_fold_only(trained, tiny_root):
    from mask_cls.data.folds import split
    from mask_cls.data.layouts.competition.tables import read_train

    ckpt = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    counts = ckpt["hyper_parameters"]["config"]["class_counts"]
    train, val = split(read_train(tiny_root), n_folds=3, fold=0, seed=42)
    assert counts == np.bincount(train.label, minlength=18).tolist()
    assert sum(counts) == len(train) and len(val) > 0


def test_data_strategies_through_run_py(tiny_root, tmp_path):
    """Sampler, cache, shipped label fixes, age threshold and batch augmentation, wired together."""
    from mask_cls import labels as L
    from mask_cls.data.folds import split
    from mask_cls.data.layouts.competition.tables import read_train

    train, _ = split(read_train(tiny_root), n_folds=3, fold=0, seed=42)
    threshold = int(train.age[train.age < 60].max())  # moves the oldest persons under 60 of the fold
    out, cache = tmp_path / "run", tmp_path / "cache"
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *FAST, "sampler=person_balanced",
                "data.cache=true", f"data.cache_dir={cache}", "data.relabel=competition",
                f"data.age_threshold={threshold}",
                "augment=seed_cutmix", "tta=[none]")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "relabel competition: its keys are the real competition data" in r.stdout + r.stderr  # synthetic: skipped
    assert len(list((cache / "64x48").glob("*.npy"))) > 0
    assert (out / "submission.csv").is_file()
    # each option reached training: the class counts are those of the moved age threshold
    moved = L.encode(train["mask"], train.gender, L.age_group(train.age, threshold))
    assert threshold >= 30 and (moved != train.label).any()
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    config = ckpt["hyper_parameters"]["config"]
    assert config["class_counts"] == np.bincount(moved, minlength=18).tolist()
    assert config["augment_batch"]["cutmix"]["p"] > 0


def test_predict_applies_the_runs_calibration(trained, tiny_root, tmp_path):
    """The train run fitted a temperature on its validation persons (lower NLL there); task=predict
    divides the logits by it (probs.csv equals the loop above with it), and task.calibrate=false
    does not."""
    cal = json.loads((trained / "calibration.json").read_text())
    assert list(cal["temperatures"]) == ["class"] and cal["nll_after"] <= cal["nll_before"] + 1e-6
    assert cal["temperatures"]["class"] != 1.0
    for calibrate in (True, False):
        out = tmp_path / f"predict_{calibrate}"
        r = run_cli("task=predict", f"run_dir={trained}", "task.save_probs=true", f"task.calibrate={str(calibrate).lower()}",
                    f"hydra.run.dir={out}")
        assert r.returncode == 0, r.stderr[-2000:]
        probs = pd.read_csv(out / "probs.csv").drop(columns="ImageID").to_numpy()
        np.testing.assert_allclose(probs, best_with_hflip_tta(trained, tiny_root, "eval", calibrated=calibrate), atol=1e-5)
