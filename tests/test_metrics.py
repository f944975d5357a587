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
