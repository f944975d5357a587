"""Options as users type them: logger=none, callbacks=early_stopping, TensorBoard read back."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


def test_logger_none_trains_and_writes_its_results(tiny_root, tmp_path):
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "logger=none", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "r" / "submission.csv").is_file() and not (tmp_path / "r" / "csv").exists()


def test_early_stopping_stops_after_patience(tiny_root, tmp_path):
    # min_delta 1.0: no epoch can improve val/f1 by a whole point, so it stops after 1 + patience epochs
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "callbacks=early_stopping",
                "callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=1.0",
                "trainer.max_epochs=6", "trainer.limit_train_batches=1", "task.predict=false",
                f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs"] == 2


def test_tensorboard_hparams_and_figure_steps(tiny_root, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tb"
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, "trainer.max_epochs=2", "logger=tensorboard",
                "task.predict=false", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    events = EventAccumulator(str(next(p.parent for p in out.rglob("events.out.tfevents.*"))),
                              size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    hp = events.Scalars("hp_metric")
    assert abs(hp[-1].value - metrics["val/f1_best"]) < 1e-6  # the HPARAMS tab shows the best score
    last_step = max(e.step for e in events.Scalars("val/f1"))
    image_steps = {e.step for tag in events.Tags()["images"] for e in events.Images(tag)}
    assert image_steps == {last_step}  # report figures beside the final scalars, not at step 0


def test_skip_policy_alone_trains_past_an_unreadable_image(tiny_copy, tmp_path):
    person = sorted(p for p in (tiny_copy / "train" / "images").iterdir() if p.is_dir() and p.name[0] != ".")[0]
    next(person.glob("mask3.*")).write_text("not an image")
    r = run_cli("data=mask", f"data.root={tiny_copy}", *FAST, "data.on_bad_image=skip", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "skipped" in r.stdout + r.stderr and "mask3" in r.stdout + r.stderr
    assert (tmp_path / "r" / "submission.csv").is_file()
