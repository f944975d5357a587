"""Temperature scaling: the fit undoes a known over-confidence, per head output."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mask_cls.evaluation.calibration import expected_calibration_error
from mask_cls.evaluation.temperature import fit, nll, probs
from mask_cls.models.heads.linear import LinearHead
from mask_cls.models.heads.multitask import MultiTaskHead


def _calibrated_logits(n: int, classes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from their own softmax: a perfectly calibrated model."""
    z = rng.normal(0, 1.5, (n, classes))
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(classes, p=row) for row in p])
    return z, y


def test_a_model_made_over_confident_gets_its_temperature_back():
    rng = np.random.default_rng(0)
    z, y = _calibrated_logits(4000, 18, rng)
    over = torch.tensor(4.0 * z, dtype=torch.float32)[None]  # one view, logits 4x too sharp
    head = LinearHead(in_features=8)
    (t,) = fit(head, [over], y)
    assert abs(t - 4.0) < 0.3
    before, after = probs(head, [over], [1.0]).numpy(), probs(head, [over], [t]).numpy()
    ece_before, ece_after = expected_calibration_error(y, before), expected_calibration_error(y, after)
    assert ece_before > 0.2 and ece_after < 0.03 and nll(after, y) < nll(before, y)
    assert (after.argmax(1) == before.argmax(1)).all()  # one view: the ranking is untouched


def test_each_output_of_a_multitask_head_gets_its_own_temperature():
    rng = np.random.default_rng(1)
    head = MultiTaskHead(in_features=8)
    sharp = (2.0, 0.5, 3.0)  # mask over-, gender under-, age over-confident
    logits, truth = [], []
    for k, classes in enumerate((3, 2, 3)):
        z, y = _calibrated_logits(6000, classes, rng)
        logits.append(torch.tensor(sharp[k] * z, dtype=torch.float32)[None])
        truth.append(y)
    from mask_cls import labels as L

    y18 = [L.encode(int(m), int(g), int(a)) for m, g, a in zip(*truth)]
    temps = fit(head, logits, y18)
    assert np.allclose(temps, sharp, rtol=0.15), temps


@pytest.mark.slow
def test_temperatures_belong_to_the_checkpoint_they_were_fitted_for(trained, tmp_path, caplog):
    """calibration.json names the checkpoint (file name and SHA-256); another checkpoint of the
    run (last.ckpt, a copy changed by one byte) is predicted uncalibrated, with one note."""
    import json
    import logging
    import shutil

    from mask_cls.inference.runs import best_checkpoint, load_model

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    record = json.loads((run / "calibration.json").read_text())
    best = best_checkpoint(run)
    assert record["checkpoint"]["name"] == best.name and len(record["checkpoint"]["sha256"]) == 64
    assert load_model(best).net.calibrated  # fitted for it: applied
    with caplog.at_level(logging.INFO, logger="mask_cls"):
        assert not load_model(run / "checkpoints" / "last.ckpt").net.calibrated
    assert "predicted uncalibrated" in caplog.text
    other = {**record, "checkpoint": {**record["checkpoint"], "sha256": "0" * 64}}  # same name, other bytes
    (run / "calibration.json").write_text(json.dumps(other))
    assert not load_model(best).net.calibrated
    assert record["temperatures"] and pytest.approx(1.0) != list(record["temperatures"].values())[0]

