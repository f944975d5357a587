"""task=cv's bookkeeping with stand-in models whose outputs are known in advance: which fold's
model predicts which out-of-fold rows, that the submission averages every fold, and that the
CV score is the score of those rows. Training is replaced; everything around it is real."""

from __future__ import annotations

import hashlib
import itertools
import json

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate
from sklearn.metrics import f1_score

import mask_cls.tasks.cv as cv_task
from mask_cls.engine import FoldResult
from tests.conftest import compose_cfg

K = 3


class StandIn:
    """The model of one fold: a fixed random distribution per image, different for each fold."""

    def __init__(self, fold: int):
        self.fold = fold

    def probs(self, path: str) -> np.ndarray:
        seed = int(hashlib.sha256(f"{self.fold}:{path}".encode()).hexdigest()[:8], 16)
        p = np.random.default_rng(seed).dirichlet(np.full(18, 0.3))
        return p.astype(np.float32)


@pytest.fixture(scope="module")
def cv_out(tiny_root, tmp_path_factory):
    """One cv run with stand-in models, read by every test of this module (one per worker)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _cv_with_stand_ins(tiny_root, tmp_path_factory.mktemp("cv_orchestration"), monkeypatch)


def _cv_with_stand_ins(tiny_root, tmp_path, monkeypatch):
    seen_tta = []

    def fit_fold(cfg, out, layout=None):
        dm = instantiate(cfg.data, layout=layout) if layout is not None else instantiate(cfg.data)
        dm.prepare_data()
        dm.setup("fit")
        out.mkdir(parents=True, exist_ok=True)
        return FoldResult(out=out, metrics={"val/f1": 0.0}, module=StandIn(int(cfg.data.fold)), dm=dm, loggers=[])

    def predict_paths(module, paths, tta=("none",), **_):
        seen_tta.append(list(tta))
        return np.stack([module.probs(p) for p in paths])

    def validation_pass(module, paths, tta, predict_kw):  # (no logits: the stand-in is not calibrated)
        probs = predict_paths(module, list(paths), tta)
        return None, np.arange(len(probs)), probs

    monkeypatch.setattr(cv_task, "fit_fold", fit_fold)
    monkeypatch.setattr(cv_task, "predict_paths", predict_paths)
    monkeypatch.setattr(cv_task, "validation_pass", validation_pass)
    out = tmp_path / "cv"
    cfg = compose_cfg("task=cv", "data=mask", f"data.root={tiny_root}", f"data.n_folds={K}", "logger=none",
                      "tta=[none,hflip]", "task.calibrate=false", out=out)  # a stand-in has no logits to calibrate
    out.mkdir(parents=True)
    value = cv_task.cv(cfg, out)
    assert seen_tta and all(t == ["none", "hflip"] for t in seen_tta)  # the configured TTA everywhere
    return out, value


def _folds(tiny_root) -> dict[str, int]:
    """image -> the fold that holds its person out, from the real datamodule."""
    held = {}
    for k in range(K):
        dm = instantiate(compose_cfg("data=mask", f"data.root={tiny_root}", f"data.n_folds={K}",
                                     f"data.fold={k}").data)
        dm.setup("fit")
        held |= dict.fromkeys(dm.val_table["image"], k)
    return held


def test_each_oof_row_comes_from_the_model_that_held_it_out(cv_out, tiny_root):
    out, _ = cv_out
    oof = pd.read_csv(out / "oof.csv")
    held = _folds(tiny_root)
    assert sorted(oof["image"]) == sorted(held)  # every training image once
    probs = oof[[f"p{c}" for c in range(18)]].to_numpy()
    for row, image, fold in zip(probs, oof["image"], oof["fold"]):
        assert fold == held[image]
        np.testing.assert_allclose(row, StandIn(fold).probs(image), rtol=1e-6)
        for other in set(range(K)) - {fold}:  # the test can tell the folds apart
            assert not np.allclose(row, StandIn(other).probs(image))


def test_cv_score_is_the_score_of_the_oof_rows(cv_out):
    out, value = cv_out
    oof = pd.read_csv(out / "oof.csv")
    pred = oof[[f"p{c}" for c in range(18)]].to_numpy().argmax(1)
    ref = f1_score(oof["label"], pred, average="macro", labels=sorted(set(oof["label"]) | set(pred)))
    summary = json.loads((out / "cv.json").read_text())
    assert summary["cv/f1"] == pytest.approx(ref, abs=1e-9) and value == pytest.approx(ref, abs=1e-9)
    per_fold = [f1_score(g["label"], pred[g.index], average="macro", labels=sorted(set(g["label"]) | set(pred[g.index])))
                for _, g in oof.groupby("fold")]
    assert [f["f1"] for f in summary["folds"]] == pytest.approx(per_fold, abs=1e-9)


def test_submission_averages_every_fold(cv_out, tiny_root):
    out, _ = cv_out
    info = pd.read_csv(tiny_root / "eval" / "info.csv")
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub["ImageID"]) == list(info["ImageID"])  # info.csv's rows, in order
    paths = [str(tiny_root / "eval" / "images" / i) for i in info["ImageID"]]
    each = {k: np.stack([StandIn(k).probs(p) for p in paths]) for k in range(K)}
    np.testing.assert_array_equal(sub["ans"], np.mean([each[k] for k in range(K)], axis=0).argmax(1))
    for r in range(1, K):  # any proper subset of the folds gives another answer: the check can fail
        for subset in itertools.combinations(range(K), r):
            assert (np.mean([each[k] for k in subset], axis=0).argmax(1) != sub["ans"]).any(), subset
    for k in range(K):  # each fold folder: that fold's own submission
        fold_sub = pd.read_csv(out / f"fold_{k}" / "submission.csv")
        np.testing.assert_array_equal(fold_sub["ans"], each[k].argmax(1))
