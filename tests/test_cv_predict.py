"""task=cv and task=predict end to end on the tiny synthetic set."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from mask_cls.evaluation.metrics import score
from mask_cls.evaluation.suspects import PROB_COLUMNS
from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


def test_oof_covers_every_image_once_from_a_model_that_never_saw_it(cv_run, tiny_root):
    from mask_cls.data.layouts.competition.tables import read_train

    table = read_train(tiny_root)
    oof = pd.read_csv(cv_run / "oof.csv")
    assert sorted(oof.image) == sorted(table.image)  # every training image exactly once
    assert (oof.groupby("person").fold.nunique() == 1).all()
    np.testing.assert_allclose(oof[PROB_COLUMNS].sum(1), 1, atol=1e-4)
    for k in range(2):
        ckpt = json.loads((cv_run / f"fold_{k}" / "metrics.json").read_text())["best_checkpoint"]
        counts = torch.load(ckpt, weights_only=True)["hyper_parameters"]["config"]["class_counts"]
        # the fold-k model trained on exactly the images predicted by the other folds
        assert counts == np.bincount(oof.label[oof.fold != k], minlength=18).tolist()


def test_cv_scores_and_files(cv_run):
    oof = pd.read_csv(cv_run / "oof.csv")
    cv = json.loads((cv_run / "cv.json").read_text())
    assert cv["cv/f1"] == pytest.approx(score(oof.label, oof.pred)["f1"])
    fold_f1 = [score(oof.label[oof.fold == k], oof.pred[oof.fold == k])["f1"] for k in range(2)]
    assert cv["cv/f1_mean"] == pytest.approx(np.mean(fold_f1))
    assert cv["cv/f1_std"] == pytest.approx(np.std(fold_f1, ddof=1))
    suspects = pd.read_csv(cv_run / "suspects.csv")
    assert list(suspects.columns) == ["person", "task", "labeled", "predicted", "share", "confidence", "images"]
    for name in ("confusion.png", "confusion_tasks.png", "mistakes.png"):
        assert (cv_run / "report" / name).read_bytes()[:4] == b"\x89PNG"


def test_predict_reproduces_the_cv_ensemble(cv_run, tiny_root, tmp_path):
    out = tmp_path / "p"
    r = run_cli("task=predict", f"run_dir={cv_run}", "data=mask", f"data.root={tiny_root}",
                "data.num_workers=0", "task.save_probs=true", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    ours, cvs = pd.read_csv(out / "submission.csv"), pd.read_csv(cv_run / "submission.csv")
    info = pd.read_csv(tiny_root / "eval" / "info.csv")
    assert list(ours.ImageID) == list(info.ImageID) and ours.ans.equals(cvs.ans)
    probs = pd.read_csv(out / "probs.csv")
    assert (probs[PROB_COLUMNS].to_numpy().argmax(1) == ours.ans).all()
    assert len(json.loads((out / "predict.json").read_text())["models"]) == 2


def test_predict_weights_hard_vote_and_errors(cv_run, tiny_root, tmp_path):
    r = run_cli("task=predict", f"run_dir=[{cv_run},{cv_run / 'fold_0'}]", "task.weights=[1,3]", "task.vote=hard",
                "data=mask", f"data.root={tiny_root}", "data.num_workers=0", f"hydra.run.dir={tmp_path / 'a'}")
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((tmp_path / "a" / "predict.json").read_text())
    assert meta["weights"] == [0.5, 0.5, 3.0]
    r = run_cli("task=predict", f"run_dir={tmp_path}", "data=mask", f"data.root={tiny_root}",
                f"hydra.run.dir={tmp_path / 'b'}")
    assert r.returncode == 1 and "no train run" in r.stderr
    r = run_cli("task=predict", f"run_dir={cv_run}", "data=mask", f"data.root={tmp_path / 'nowhere'}",
                f"hydra.run.dir={tmp_path / 'c'}")
    assert r.returncode == 1 and "nowhere: data.root not found" in r.stderr  # said before any model loads


def test_pseudo_round_trip_from_every_fold_with_tta(cv_run, tiny_root, tmp_path):
    """task=pseudo on a cv run: the mean over both folds and both TTA views, computed here
    independently, decides labels and confidences; rows above the threshold are kept in
    info.csv order; the file then merges into training sides only."""
    from mask_cls.data.datamodule import MaskDataModule
    from mask_cls.inference.predict import predict_paths
    from mask_cls.inference.runs import load_model, run_checkpoints

    info = pd.read_csv(tiny_root / "eval" / "info.csv")
    paths = [str(tiny_root / "eval" / "images" / n) for n in info["ImageID"]]
    per_model = [predict_paths(load_model(c, calibrate=False), paths, ["none", "hflip"], num_workers=0)
                 for c in run_checkpoints(cv_run)]  # a cv run's folds predict uncalibrated (see below)
    assert len(per_model) == 2
    ref = (per_model[0] + per_model[1]) / 2
    conf = ref.max(1)
    threshold = float(np.median(conf))
    out = tmp_path / "pseudo"
    r = run_cli("task=pseudo", f"run_dir={cv_run}", "data=mask", f"data.root={tiny_root}", "data.num_workers=0",
                f"task.threshold={threshold}", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    table = pd.read_csv(out / "pseudo.csv")
    keep = conf >= threshold
    assert 0 < keep.sum() < len(paths)
    assert table["image"].tolist() == [p for p, k in zip(paths, keep) if k]
    assert table["label"].tolist() == ref.argmax(1)[keep].tolist()
    assert np.allclose(table["confidence"], conf[keep], atol=1e-5)
    meta = json.loads((out / "pseudo.json").read_text())
    assert meta["kept"] == int(keep.sum()) and len(meta["models"]) == 2 and meta["tta"] == ["none", "hflip"]
    assert sum(meta["kept_per_class"]) == meta["kept"] and (out / "pseudo_classes.png").stat().st_size > 0
    assert "class histogram" in (out / "run.log").read_text()
    # the precision estimate: the same threshold on each fold model's own validation images
    # (fold_k/report/predictions.csv, the rows of oof.csv of that fold), pooled; uncalibrated, since
    # fold k's temperature was fitted on the persons fold k's own pseudo-labels must not know
    assert meta["calibrated"] is False and (cv_run / "fold_1" / "calibration.json").is_file()
    oof = pd.read_csv(cv_run / "oof.csv")
    preds = [pd.read_csv(cv_run / f"fold_{k}" / "report" / "predictions.csv") for k in (0, 1)]
    for k, p in enumerate(preds):
        fold = oof[oof.fold == k].set_index("image").loc[p.image]
        np.testing.assert_allclose(p[PROB_COLUMNS].to_numpy(), fold[PROB_COLUMNS].to_numpy(), atol=1e-6)
    pooled = pd.concat(preds)
    top = pooled[PROB_COLUMNS].to_numpy().max(1) >= threshold
    right = (pooled[PROB_COLUMNS].to_numpy().argmax(1) == pooled.label.to_numpy())[top]
    v = meta["validation"]
    assert (v["models"], v["images"], v["kept"]) == (2, len(oof), int(top.sum()))
    assert v["right"] == pytest.approx(right.mean()) and "on its validation persons" in (out / "run.log").read_text()
    dm = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], num_workers=0, n_folds=2, fold=1,
                        pseudo_csv=str(out / "pseudo.csv"))
    dm.setup("fit")
    assert set(table["image"]) <= set(dm.train_table["image"])
    assert not set(table["image"]) & set(dm.val_table["image"])
    # per fold: fold k's model alone labels the images; the folder gives fold k exactly that file
    from mask_cls.data.pseudo import persons_digest

    assert meta["folds"] == {"n_folds": 2, "split_seed": 42, "kept": {"0": int((per_model[0].max(1) >= threshold).sum()),
                                                                      "1": int((per_model[1].max(1) >= threshold).sum())},
                             "thresholds": {"0": threshold, "1": threshold},
                             "persons": {str(k): persons_digest(oof[oof.fold == k].person) for k in (0, 1)}}
    for k in (0, 1):
        fold_table = pd.read_csv(out / f"pseudo_fold{k}.csv")
        alone = per_model[k].max(1) >= threshold
        assert fold_table["image"].tolist() == [p for p, a in zip(paths, alone) if a]
        assert fold_table["label"].tolist() == per_model[k].argmax(1)[alone].tolist()
        dm = MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], num_workers=0, n_folds=2, fold=k,
                            pseudo_csv=str(out))
        dm.setup("fit")
        merged = dm.train_table[dm.train_table["image"].isin(paths)]
        assert merged["image"].tolist() == fold_table["image"].tolist()
        assert merged["label"].tolist() == fold_table["label"].tolist()
    from mask_cls.errors import DataError

    with pytest.raises(DataError, match=r"pseudo\.json: per-fold pseudo-labels of n_folds, split_seed = \(2, 42\)"):
        MaskDataModule.from_flat(str(tiny_root), image_size=[64, 48], num_workers=0, n_folds=3, pseudo_csv=str(out)).setup("fit")
    # the same n_folds and split_seed, other persons (a person relabeled into another stratum moves folds)
    moved = tmp_path / "moved"
    shutil.copytree(tiny_root, moved)
    csv = moved / "train" / "train.csv"
    gone = oof[oof.fold == 0].person.iloc[0]  # one of fold 0's validation persons leaves the data
    csv.write_text("".join(line + "\n" for line in csv.read_text().splitlines() if not line.endswith("," + gone)))
    with pytest.raises(DataError, match=r"fold \d's validation persons are not this run's"):
        MaskDataModule.from_flat(str(moved), image_size=[64, 48], num_workers=0, n_folds=2, fold=0, pseudo_csv=str(out)).setup("fit")
    # a second pseudo run never writes into the first one's folder
    r = run_cli("task=pseudo", f"run_dir={cv_run}", "data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}")
    assert r.returncode == 1 and "already holds" in r.stderr


def test_pseudo_threshold_chosen_for_a_precision_on_validation(cv_run, tiny_root, tmp_path):
    """task.min_precision: the threshold comes from the folds' own validation predictions (the
    out-of-fold rows, uncalibrated as a cv run's eval images are), and the eval images are kept at
    that threshold."""
    from mask_cls.data import pseudo

    oof = pd.concat([pd.read_csv(cv_run / f"fold_{k}" / "report" / "predictions.csv").assign(fold=k)
                     for k in (0, 1)])
    assert sorted(oof.image) == sorted(pd.read_csv(cv_run / "oof.csv").image)  # every out-of-fold row once
    probs, y = oof[PROB_COLUMNS].to_numpy(), oof.label.to_numpy()
    conf = probs.max(1)
    target = float((probs.argmax(1) == y)[conf >= np.median(conf)].mean())  # reached at the median at least
    expected, precision = pseudo.threshold_on_curve(pseudo.selection_curve(y, probs), target)
    assert expected is not None and precision >= target
    out = tmp_path / "p"
    r = run_cli("task=pseudo", f"run_dir={cv_run}", "data=mask", f"data.root={tiny_root}", "data.num_workers=0",
                f"task.min_precision={target}", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    meta = json.loads((out / "pseudo.json").read_text())
    assert meta["threshold"] == pytest.approx(expected) and meta["validation"]["right"] == pytest.approx(precision)
    # the trade-off it chose from: the curve's row at the threshold is the selection reported
    curve = pd.read_csv(out / "pseudo_threshold.csv")
    pd.testing.assert_frame_equal(curve, pseudo.selection_curve(y, probs), atol=1e-6)
    row = curve[np.isclose(curve.threshold, expected)].iloc[0]
    assert row.kept == meta["validation"]["kept"] and row.right == pytest.approx(precision)
    assert (out / "pseudo_threshold.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kept = pd.read_csv(out / "pseudo.csv")
    assert (kept.confidence >= expected - 1e-6).all() and len(kept) == meta["kept"]
    # per fold: fold k's threshold from the other fold's validation persons only
    for k in (0, 1):
        other = oof[oof.fold != k]
        want, _ = pseudo.threshold_on_curve(pseudo.selection_curve(other.label.to_numpy(),
                                                                   other[PROB_COLUMNS].to_numpy()), target)
        assert meta["folds"]["thresholds"][str(k)] == pytest.approx(want)
        fold_file = pd.read_csv(out / f"pseudo_fold{k}.csv")
        assert (fold_file.confidence >= want - 1e-6).all()
    r = run_cli("task=pseudo", f"run_dir={cv_run}", "data=mask", f"data.root={tiny_root}", "task.min_precision=1.5",
                f"hydra.run.dir={tmp_path / 'bad'}")
    assert r.returncode == 1 and "task.min_precision=1.5: must be in (0, 1]" in r.stderr
    assert not (tmp_path / "bad" / "pseudo.csv").exists()


def test_suspects_of_a_weak_model_come_with_a_warning(cv_run):
    """The tiny cv run's models are near chance: its suspects.csv is said to be their own mistakes."""
    cv = json.loads((cv_run / "cv.json").read_text())
    assert cv["cv/f1"] < 0.5 and "suspects.csv comes from models of CV macro F1" in (cv_run / "run.log").read_text()
