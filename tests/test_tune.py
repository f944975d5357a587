"""task=tune: Lightning's learning-rate and batch-size finders on the composed run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


def test_tune_finds_a_learning_rate_and_a_batch_size(tiny_root, tmp_path):
    out = tmp_path / "tune"
    fast = [o for o in FAST if not o.startswith(("trainer.max_epochs", "trainer.limit_train_batches"))]
    r = run_cli("task=tune", "data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *fast,
                "data.batch_size=8", "task.num_training=24", "task.batch_size=true", "task.max_batch_size=32",
                "task.early_stop_threshold=null")
    assert r.returncode == 0, r.stderr[-3000:]
    found = json.loads((out / "tune.json").read_text())
    # the LR finder: its curve, and the suggestion by the documented rule (steepest fall of the
    # loss, the first 10 and the last point left out), recomputed here from the written curve
    curve = pd.read_csv(out / "lr_find.csv")
    assert len(curve) == found["lr_find"]["steps"] == 24
    assert np.all(np.diff(curve.lr) > 0) and curve.lr.iloc[0] == pytest.approx(1e-6, rel=0.5)
    losses = curve.loss.to_numpy()[10:-1]
    expected = curve.lr.iloc[10 + int(np.gradient(losses[np.isfinite(losses)]).argmin())]
    assert found["lr_find"]["suggested_lr"] == pytest.approx(expected)
    assert found["lr_find"]["override"] == f"optim.lr={expected:.3g}"
    assert (out / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    # the batch-size finder on a CPU: doubling from 8, memory never runs out, so it stops at the cap
    assert found["batch_size"] == {"batch_size": 32, "at_cap": True, "override": "data.batch_size=32"}
    assert found["lr_find"]["batch_size"] == 32  # the rate is searched at the batch size found, not the typed 8
    assert "use: data.batch_size=32 optim.lr=" in r.stdout
    # in a pipe or a log file the finder says its progress in lines, not a bar joined by carriage returns
    output = r.stdout + r.stderr
    assert "\r" not in output and "Finding best initial lr" not in output
    assert "learning-rate finder: 1/24 steps" in r.stdout and "learning-rate finder: 24/24 steps (100%)" in r.stdout
    assert not list(out.glob(".*.ckpt"))  # the finders' temporary checkpoints are gone
