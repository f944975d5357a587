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
    record = json.loads((run / "calibration.json").read_text()) | {"applied": True}  # whatever the held-out check said
    (run / "calibration.json").write_text(json.dumps(record))
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



def _persons(n_persons: int, per: int = 7) -> list[str]:
    return [f"{i:04d}_p" for i in range(n_persons) for _ in range(per)]


class _Net:
    """What calibrate_run touches of a module: its head and where temperatures are set."""

    def __init__(self):
        self.head, self.set_to = LinearHead(in_features=8), None

    def set_temperatures(self, temps):
        self.set_to = list(temps)


def _calibrate(tmp_path, logits, y, persons):
    import pandas as pd

    from mask_cls.evaluation.temperature import calibrate_run

    module = type("M", (), {})()
    module.net = _Net()
    val = pd.DataFrame({"image": [f"{i}.jpg" for i in range(len(y))], "label": y, "person": persons})
    record = calibrate_run(module, val, [torch.tensor(logits, dtype=torch.float32)[None]], np.arange(len(y)),
                           tmp_path, "validation persons (fold 0)")
    return record, module.net.set_to


def test_temperatures_that_help_held_out_persons_are_applied(tmp_path):
    rng = np.random.default_rng(1)
    z, y = _calibrated_logits(60 * 7, 18, rng)
    record, applied = _calibrate(tmp_path, 4.0 * z, y, _persons(60))  # 4x too sharp: any half shows it
    check = record["cross_fitted"]
    assert record["applied"] and check["nll_after"] < check["nll_before"]
    assert applied == [pytest.approx(list(record["temperatures"].values())[0])] and abs(applied[0] - 4.0) < 0.6
    assert (tmp_path / "report" / "predictions_calibrated.csv").is_file()


def test_temperatures_that_fit_one_half_of_the_persons_only_are_not_applied(tmp_path):
    """Half the persons labelled by the model's own argmax (a sharpening temperature fits them),
    the other half at random (a flattening one): fitted on one half, each hurts the other."""
    from mask_cls.evaluation.temperature import NAME, read

    rng = np.random.default_rng(2)
    persons = _persons(60)
    z = rng.normal(0, 1.5, (len(persons), 18))
    even = np.array([int(p[:4]) % 2 == 0 for p in persons])
    y = np.where(even, z.argmax(1), rng.integers(0, 18, len(persons)))
    record, applied = _calibrate(tmp_path, z, y, persons)
    check = record["cross_fitted"]
    assert not record["applied"] and check["nll_after"] >= check["nll_before"]
    assert applied is None and not (tmp_path / "report" / "predictions_calibrated.csv").exists()
    assert (tmp_path / NAME).is_file() and read(tmp_path, ["class"]) is None  # predicted as trained


@pytest.mark.parametrize("n_persons, checked", [(2 * 20, True), (2 * 20 - 1, False), (10, False)])
def test_the_held_out_check_needs_20_persons_a_half(tmp_path, n_persons, checked):
    from mask_cls.evaluation.temperature import MIN_HALF, cross_fitted

    assert MIN_HALF == 20
    rng = np.random.default_rng(3)
    z, y = _calibrated_logits(n_persons * 3, 18, rng)
    found = cross_fitted(LinearHead(in_features=8), [torch.tensor(z, dtype=torch.float32)[None]], y,
                         _persons(n_persons, 3))
    assert (found is not None) == checked


@pytest.mark.slow
def test_a_fit_says_whether_its_temperature_helps_persons_it_was_not_fitted_on(tmp_path):
    """As typed: a train run with 40 validation persons (enough for the held-out check) prints one
    line with the temperature, whether it is applied and the held-out NLLs, and calibration.json
    keeps the same decision."""
    import json
    import re

    from tests.conftest import FAST, run_cli

    out = tmp_path / "run"
    r = run_cli("synth.train_persons=120", "synth.eval_persons=3", "synth.image_size=[64,48]", *FAST,
                f"hydra.run.dir={out}", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads((out / "calibration.json").read_text())
    check = record["cross_fitted"]
    assert check is not None and record["applied"] == (check["nll_after"] < check["nll_before"])
    (line,) = [ln for ln in r.stdout.splitlines() if "calibration: T = " in ln]
    assert ("NOT applied" in line) != record["applied"]
    shown = re.search(r"held-out NLL ([0-9.]+) -> ([0-9.]+)", line)
    assert shown and float(shown[1]) == pytest.approx(check["nll_before"], abs=1e-4)
    assert float(shown[2]) == pytest.approx(check["nll_after"], abs=1e-4)
    assert (out / "report" / "predictions_calibrated.csv").is_file() == record["applied"]
