import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score
from torchmetrics.classification import MulticlassF1Score

from mask_cls import labels as L
from mask_cls.evaluation.metrics import macro_f1, score


@pytest.mark.parametrize("seed", range(5))
def test_score_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    y = rng.integers(0, 18 if seed % 2 else 9, n)  # odd seeds: some classes absent
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, 18, n))
    s = score(y, p)
    assert s["f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert s["acc"] == pytest.approx(accuracy_score(y, p))
    for task, parts in zip(("mask", "gender", "age"), zip(L.decode(y), L.decode(p))):
        assert s[f"f1_{task}"] == pytest.approx(f1_score(parts[0], parts[1], average="macro"))


def test_epoch_f1_is_not_the_mean_of_batch_f1():
    """The module's torchmetrics F1 over an epoch equals F1 of all predictions at once."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 18, 300)
    p = np.where(rng.random(300) < 0.5, y, rng.integers(0, 18, 300))
    metric = MulticlassF1Score(num_classes=18, average="macro")
    batch_f1 = []
    for i in range(0, 300, 32):
        metric.update(torch.tensor(p[i:i + 32]), torch.tensor(y[i:i + 32]))
        batch_f1.append(macro_f1(y[i:i + 32], p[i:i + 32]))
    epoch = float(metric.compute())
    assert epoch == pytest.approx(f1_score(y, p, average="macro"), abs=1e-6)
    assert abs(epoch - np.mean(batch_f1)) > 1e-3


def test_submission_csv_read_by_the_one_table_reader(tmp_path):
    """BOM, spaces and blank lines as the training CSVs allow; errors give the file's line."""
    from mask_cls.errors import DataError
    from mask_cls.evaluation.submission import read_labels

    ok = tmp_path / "sub.csv"
    ok.write_text("\ufeffImageID, ans\n a.jpg ,3\n\nb.jpg, 17\n")
    labels = read_labels(ok, "submission")
    assert labels.to_dict() == {"a.jpg": 3, "b.jpg": 17}
    bad = tmp_path / "bad.csv"
    bad.write_text("ImageID,ans\na.jpg,3\n\nb.jpg,18\n")
    with pytest.raises(DataError, match=r"bad\.csv:4: ans '18' is not a class in 0\.\.17"):
        read_labels(bad, "submission")


def test_reliability_and_calibration_error_by_hand():
    """Four images at confidence 0.95 with two right, two at 0.55 both right: the first bin is
    over-confident by 0.45, the second under-confident by 0.45, so ECE = 0.45."""
    from mask_cls.evaluation.calibration import (
        expected_calibration_error,
        kept_summary,
        reliability,
    )

    def row(top: int, p: float) -> np.ndarray:
        r = np.full(18, (1 - p) / 17)
        r[top] = p
        return r

    probs = np.stack([row(0, .95), row(1, .95), row(2, .95), row(3, .95), row(4, .55), row(5, .55)])
    y = np.array([0, 1, 7, 7, 4, 5])
    table = reliability(y, probs)  # ten bins of width 0.1: 0.95 in the last, 0.55 in the sixth
    assert table.loc[9, "images"] == 4 and table.loc[9, "accuracy"] == 0.5
    assert table.loc[9, "confidence"] == pytest.approx(0.95)
    assert table.loc[5, "images"] == 2 and table.loc[5, "accuracy"] == 1.0
    assert table.images.sum() == 6
    assert expected_calibration_error(y, probs) == pytest.approx(0.45)
    top = kept_summary(y, probs, probs.max(1) >= 0.9)
    assert (top["kept"], top["right"], top["kept_share"]) == (4, 0.5, pytest.approx(4 / 6))


def test_calibration_error_against_a_loop():
    from mask_cls.evaluation.calibration import expected_calibration_error

    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, (500, 18))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.where(rng.random(500) < 0.6, probs.argmax(1), rng.integers(0, 18, 500))
    conf, right = probs.max(1), probs.argmax(1) == y
    ece = 0.0
    for b in range(10):
        m = (conf > b / 10) & (conf <= (b + 1) / 10)
        if m.any():
            ece += m.mean() * abs(right[m].mean() - conf[m].mean())
    assert expected_calibration_error(y, probs) == pytest.approx(ece, abs=1e-12)


def test_the_report_summary_is_one_line_however_narrow_the_output(capsys, monkeypatch):
    """The ECE used to wrap onto a line of its own in log files (rich fitted the caption to the table)."""
    import pandas as pd

    from mask_cls.evaluation.report import _print

    monkeypatch.setenv("COLUMNS", "40")
    scores = {"f1": 0.5, "acc": 0.6, "f1_mask": 0.91, "f1_gender": 0.82, "f1_age": 0.43, "ece": 0.0341}
    table = pd.DataFrame({"class": [0], "name": ["wear/male/<30"], "f1": [0.5], "support": [7], "predicted": [6]})
    _print(table, scores, "val")
    lines = capsys.readouterr().out.splitlines()
    assert "F1 mask 0.910, gender 0.820, age 0.430; calibration error (ECE) 0.034" in lines  # a whole line
