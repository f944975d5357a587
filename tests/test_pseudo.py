"""Pseudo-labels: which predictions are kept, the file read back with clear errors, and the
merge: pseudo rows on the training side of every fold, never in validation."""

import numpy as np
import pandas as pd
import pytest
import torch

from mask_cls.data import pseudo
from mask_cls.data.datamodule import MaskDataModule
from mask_cls.errors import ConfigError, DataError
from tests.conftest import FAST, run_cli


def _probs(rows):
    """(N, 18) probabilities with the given (class, confidence) per row, the rest spread evenly."""
    p = np.zeros((len(rows), 18))
    for i, (c, conf) in enumerate(rows):
        p[i] = (1 - conf) / 17
        p[i, c] = conf
    return p


def test_threshold_and_top_share_per_class():
    probs = _probs([(0, 0.95), (0, 0.91), (0, 0.99), (0, 0.50), (5, 0.92), (7, 0.97), (7, 0.93)])
    assert pseudo.select(probs, 0.9).tolist() == [True, True, True, False, True, True, True]
    # top half of each predicted class (ceil): class 0 has 4 images -> 2 (0.99, 0.95); class 5: 1; class 7: 1
    assert pseudo.select(probs, 0.9, 0.5).tolist() == [True, False, True, False, True, True, False]
    # the threshold still applies inside the top share
    assert pseudo.select(probs, 0.96, 1.0).tolist() == [False, False, True, False, False, True, False]
    table = pseudo.pseudo_table([f"img{i}" for i in range(7)], probs, pseudo.select(probs, 0.9, 0.5))
    assert table["image"].tolist() == ["img0", "img2", "img4", "img5"]  # the input order
    assert table["label"].tolist() == [0, 0, 5, 7] and table["confidence"].tolist() == [0.95, 0.99, 0.92, 0.97]
    with pytest.raises(ConfigError, match="task.top_share"):
        pseudo.select(probs, 0.9, 0)
    with pytest.raises(ConfigError, match="task.threshold"):
        pseudo.select(probs, 1.2)


def _write(tmp_path, rows, name="pseudo.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["image", "label", "confidence"]).to_csv(path, index=False)
    return path


def test_read_pseudo_errors_name_the_file_and_line(tiny_root, tmp_path):
    img = sorted((tiny_root / "eval" / "images").iterdir())
    ok = _write(tmp_path, [(str(img[0]), 3, 0.95)])
    assert pseudo.read_pseudo(ok, [tiny_root])["label"].tolist() == [3]
    missing = _write(tmp_path, [(str(img[0]), 3, 0.95), (str(tmp_path / "gone.jpg"), 1, 0.9)], "m.csv")
    with pytest.raises(DataError, match=r"m.csv:3: image .*gone.jpg.* not found"):
        pseudo.read_pseudo(missing, [tiny_root])
    bad = _write(tmp_path, [(str(img[0]), 18, 0.95)], "b.csv")
    with pytest.raises(DataError, match=r"b.csv:2: label '18' is not a class"):
        pseudo.read_pseudo(bad)
    (tmp_path / "c.csv").write_text("path,label\nx,1\n")
    with pytest.raises(DataError, match=r"c.csv: missing column\(s\) image"):
        pseudo.read_pseudo(tmp_path / "c.csv")
    # relative paths are read against the csv's folder
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(img[1].read_bytes())
    rel = _write(tmp_path, [("imgs/a.jpg", 4, 0.99)], "r.csv")
    assert pseudo.read_pseudo(rel)["image"].tolist() == [str(tmp_path / "imgs" / "a.jpg")]


def _dm(root, fold, **kw):
    dm = MaskDataModule.from_flat(str(root), image_size=[64, 48], batch_size=8, num_workers=0, n_folds=3, fold=fold, **kw)
    dm.setup("fit")
    return dm


def test_pseudo_rows_join_the_training_side_of_every_fold_only(tiny_root, tmp_path):
    eval_imgs = [str(p) for p in sorted((tiny_root / "eval" / "images").iterdir())]
    rows = [(p, i % 18, 0.9) for i, p in enumerate(eval_imgs)]
    csv = _write(tmp_path, rows)
    for fold in range(3):
        plain, merged = _dm(tiny_root, fold), _dm(tiny_root, fold, pseudo_csv=str(csv), pseudo_weight=0.25)
        pd.testing.assert_frame_equal(plain.val_table, merged.val_table)  # validation untouched
        assert not set(eval_imgs) & set(merged.val_table["image"])
        extra = merged.train_table[merged.train_table["pseudo"]]
        assert extra["image"].tolist() == eval_imgs and extra["label"].tolist() == [r[1] for r in rows]
        assert len(merged.train_table) == len(plain.train_table) + len(eval_imgs)
        assert (merged.train_table["weight"] == np.where(merged.train_table["pseudo"], 0.25, 1.0)).all()
    # the loader hands the weights to the loss
    batch = next(iter(torch.utils.data.DataLoader(merged.train_dataloader().dataset, batch_size=len(merged.train_table))))
    assert len(batch) == 3 and sorted(set(batch[2].tolist())) == [0.25, 1.0]


def test_a_validation_image_in_the_pseudo_file_is_refused(tiny_root, tmp_path):
    val_img = _dm(tiny_root, 1).val_table["image"].iloc[0]
    csv = _write(tmp_path, [(val_img, 0, 0.99)])
    with pytest.raises(DataError, match="validation images of this fold"):
        _dm(tiny_root, 1, pseudo_csv=str(csv))


def test_sample_weights_scale_the_pseudo_rows_loss():
    from mask_cls.losses.ce import CrossEntropy

    g = torch.Generator().manual_seed(0)
    logits, y = torch.randn(6, 18, generator=g), torch.randint(0, 18, (6,), generator=g)
    cw = torch.rand(18, generator=g) + 0.5
    w = torch.tensor([1.0, 1.0, 1.0, 0.5, 0.5, 0.0])
    nll = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    # a pseudo row counts w times a labeled one, in the normaliser too (torch's weighted mean)
    ref = (w * cw[y] * nll).sum() / (w * cw[y]).sum()
    assert torch.allclose(CrossEntropy(cw)(logits, y, w), ref)
    assert torch.allclose(CrossEntropy(cw)(logits, y), torch.nn.functional.cross_entropy(logits, y, weight=cw))


@pytest.mark.slow
def test_missing_pseudo_image_is_a_one_line_error(tiny_root, tmp_path):
    csv = _write(tmp_path, [(str(tmp_path / "gone.jpg"), 1, 0.9)])
    r = run_cli("data=mask", f"data.root={tiny_root}", f"data.pseudo_csv={csv}", f"hydra.run.dir={tmp_path / 'run'}",
                *FAST)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == f"error: {csv}:2: image '{tmp_path / 'gone.jpg'}' not found"


def test_a_broken_predictions_file_is_a_one_line_error(tmp_path):
    """A run's report/predictions.csv is read as data: labels and probabilities are checked."""
    from mask_cls.errors import DataError
    from mask_cls.evaluation.report import read_predictions
    from mask_cls.labels import PROB_COLUMNS

    good = [1 / 18] * 18
    rows = [["a.jpg", "3", "0", *good], ["b.jpg", "17", "0", *good]]
    path = tmp_path / "predictions.csv"
    pd.DataFrame(rows, columns=["image", "label", "pred", *PROB_COLUMNS]).to_csv(path, index=False)
    y, probs = read_predictions(path)
    assert y.tolist() == [3, 17] and probs.shape == (2, 18)
    for bad in (["c.jpg", "18", "0", *good], ["c.jpg", "2", "0", *[0.5] * 18], ["c.jpg", "2", "0", "nan", *good[1:]],
                ["c.jpg", "__import__('os')", "0", *good]):
        pd.DataFrame([*rows, bad], columns=["image", "label", "pred", *PROB_COLUMNS]).to_csv(path, index=False)
        with pytest.raises(DataError, match=r"predictions\.csv:4: not a label 0\.\.17 with probabilities"):
            read_predictions(path)


def test_threshold_for_a_precision_against_brute_force():
    """The lowest threshold whose kept labels are right at least the target share of the time
    (the most images at that precision), checked against every confidence tried by hand."""
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 2.5, (150, 18))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    conf = probs.max(1)
    y = np.where(rng.random(150) < conf, probs.argmax(1), (probs.argmax(1) + 1) % 18)  # right more often when sure
    right = probs.argmax(1) == y
    for target in (0.6, 0.8, 0.9):
        ok = [t for t in sorted(set(conf)) if right[conf >= t].mean() >= target]
        t, precision = pseudo.threshold_on_curve(pseudo.selection_curve(y, probs), target)
        assert t == ok[0] and precision == pytest.approx(right[conf >= t].mean()) and precision >= target
    # with top_share the same rule applies to the per-class selection
    t, precision = pseudo.threshold_on_curve(pseudo.selection_curve(y, probs, 0.5), 0.8)
    keep = pseudo.select(probs, t, 0.5)
    assert right[keep].mean() == pytest.approx(precision) and precision >= 0.8
    assert all(right[pseudo.select(probs, s, 0.5)].mean() < 0.8 for s in sorted(set(conf)) if s < t)
    t, best = pseudo.threshold_on_curve(pseudo.selection_curve(y, probs), 1.01)
    assert t is None and best == pytest.approx(max(right[conf >= s].mean() for s in set(conf)))


def test_selection_curve_against_every_threshold_by_hand():
    """Under 201 images every confidence is a candidate: each row is the selection at that
    threshold, counted here with a plain comparison; with top_share, the per-class selection."""
    rng = np.random.default_rng(8)
    logits = rng.normal(0, 2.0, (120, 18))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    conf, pred = probs.max(1), probs.argmax(1)
    y = np.where(rng.random(120) < conf, pred, (pred + 3) % 18)
    curve = pseudo.selection_curve(y, probs)
    assert list(curve.threshold) == sorted(set(conf.tolist()))
    for row in curve.itertuples():
        m = conf >= row.threshold
        assert row.kept == m.sum() and row.kept_share == pytest.approx(m.mean())
        assert row.right == pytest.approx((pred[m] == y[m]).mean())
    assert curve.kept.is_monotonic_decreasing and curve.kept.iloc[0] == 120
    half = pseudo.selection_curve(y, probs, top_share=0.5)
    for row in half.itertuples():
        keep = pseudo.select(probs, row.threshold, 0.5)
        assert row.kept == keep.sum() and row.right == pytest.approx((pred[keep] == y[keep]).mean())
    assert half.kept.iloc[0] < 120  # half of each predicted class at most


def test_min_precision_needs_validation_predictions_and_a_reachable_target(tmp_path):
    from mask_cls.ssl.pseudo import threshold_from_validation

    with pytest.raises(ConfigError, match="task.min_precision needs the runs' validation predictions"):
        threshold_from_validation(None, 0.9)
    probs = np.full((4, 18), 0.5 / 17)
    probs[:, 0] = 0.5
    with pytest.raises(ConfigError, match=r"task.min_precision=0.9: no threshold is right that often .* 0\.500"):
        threshold_from_validation(pseudo.selection_curve(np.array([0, 0, 1, 1]), probs), 0.9)
