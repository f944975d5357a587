"""``task.keep``: which model a fit keeps. ``last``: the schedule's final model is the one
predicted, reported, calibrated and exported, and ``val/f1_best`` is its score."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import torch

from tests.conftest import FAST, compose_cfg, run_cli
from tests.test_cli import best_with_hflip_tta


@pytest.mark.slow
def test_keep_last_is_the_model_predicted_reported_calibrated_and_exported(tiny_root, tmp_path):
    out = tmp_path / "last"
    fast = [o for o in FAST if not o.startswith("trainer.max_epochs")]
    # the monitored "best" is epoch 0 whatever the scores (the lowest epoch number): a model other than the last
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *fast, "trainer.max_epochs=3",
                "task.keep=last", "callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min")
    assert r.returncode == 0, r.stderr[-3000:]
    ckpts = out / "checkpoints"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kept"] == "last" and metrics["best_checkpoint"] == str(ckpts / "last.ckpt")
    (first,) = ckpts.glob("epoch000*.ckpt")

    def state(path):
        return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]

    a, b = state(first), state(ckpts / "last.ckpt")
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("net."))  # two different models
    # what sweeps optimise is the kept model's score: the final epoch's val/f1 in the run's CSV log
    log = pd.read_csv(out / "csv" / "metrics.csv").dropna(subset=["val/f1"])
    assert len(log) == 3 and metrics["val/f1_best"] == pytest.approx(float(log["val/f1"].iloc[-1]))
    # the temperatures were fitted for last.ckpt, and the submission is its predictions
    calibration = json.loads((out / "calibration.json").read_text())
    assert calibration["checkpoint"] == {"name": "last.ckpt",
                                         "sha256": hashlib.sha256((ckpts / "last.ckpt").read_bytes()).hexdigest()}
    probs = best_with_hflip_tta(out, tiny_root, "eval")
    assert (pd.read_csv(out / "submission.csv").ans.to_numpy() == probs.argmax(1)).all()
    # predict and export read the same rule from the run
    exp = tmp_path / "export"
    typed = ["callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min"]  # outside a recipe
    r = run_cli("task=export", f"run_dir={out}", f"hydra.run.dir={exp}", "trainer.accelerator=cpu", *typed)
    assert r.returncode == 0, r.stderr[-3000:]
    assert [str(c).rsplit("/", 1)[-1] for c in json.loads((exp / "export.json").read_text())["checkpoints"]] == \
        ["last.ckpt"]


@pytest.mark.parametrize("value, ok", [("best", True), ("last", True), ("worst", False), ("Last", False),
                                       ("", False), ("swa", False)])
def test_keep_takes_best_or_last(value, ok):
    from mask_cls import preflight
    from mask_cls.errors import ConfigError

    cfg = compose_cfg(f"task.keep={value}" if value else "task.keep=''")
    if ok:
        preflight.check(cfg)
    else:
        with pytest.raises(ConfigError, match="task.keep=.*: one of best, last"):
            preflight.check(cfg)


@pytest.mark.slow
def test_an_unknown_keep_rule_is_refused_at_once(tmp_path):
    r = run_cli("task.keep=worst", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode != 0 and "task.keep=worst: one of best, last" in r.stderr
    assert not (tmp_path / "r").exists()  # refused before the run folder was claimed
