"""``task.keep``: which model a fit keeps. ``last``: the schedule's final model is the one
predicted, reported, calibrated and exported, and ``val/f1_best`` is its score; ``loss``: the
epoch of the lowest val/loss, and ``val/f1_best`` is that epoch's val/f1."""

from __future__ import annotations

import hashlib
import json

import lightning.pytorch as pl
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

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
    card = (exp / "MODEL_CARD.md").read_text()  # and the model card says which model it describes
    assert "- model: `checkpoints/last.ckpt` (kept by `task.keep=last`, the schedule's final epoch)" in card


@pytest.mark.parametrize("value, ok", [("best", True), ("last", True), ("loss", True), ("worst", False),
                                       ("Last", False), ("val/loss", False), ("", False), ("swa", False)])
def test_keep_takes_best_loss_or_last(value, ok):
    from mask_cls import preflight
    from mask_cls.errors import ConfigError

    cfg = compose_cfg(f"task.keep={value}" if value else "task.keep=''")
    if ok:
        preflight.check(cfg)
    else:
        with pytest.raises(ConfigError, match="task.keep=.*: one of best, loss, last"):
            preflight.check(cfg)


@pytest.mark.slow
def test_an_unknown_keep_rule_is_refused_at_once(tmp_path):
    r = run_cli("task.keep=worst", f"hydra.run.dir={tmp_path / 'r'}")
    assert r.returncode != 0 and "task.keep=worst: one of best, loss, last" in r.stderr
    assert not (tmp_path / "r").exists()  # refused before the run folder was claimed


class Scripted(pl.LightningModule):
    """A model whose validation scores per epoch are given: which epoch each rule keeps is known."""

    def __init__(self, f1: list[float], loss: list[float]) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.f1, self.val_loss = f1, loss

    def training_step(self, batch, batch_idx):
        return (self.w - 1).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            e = self.current_epoch
            self.log_dict({"val/f1": self.f1[e], "val/loss": self.val_loss[e], "val/f1_best": max(self.f1[: e + 1])})

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def scripted_fit(folder, f1, loss, monitor="val/f1", mode="max", resume=None):
    from torch.utils.data import DataLoader, TensorDataset

    from mask_cls.callbacks import BestCheckpoint

    best = BestCheckpoint(dirpath=folder, filename="epoch{epoch:03d}", monitor=monitor, mode=mode,
                          auto_insert_metric_name=False)
    last = ModelCheckpoint(dirpath=folder, filename="last", monitor=None, enable_version_counter=False)
    trainer = pl.Trainer(max_epochs=len(f1), callbacks=[best, last], logger=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    data = DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=1)
    trainer.fit(Scripted(f1, loss), data, data, ckpt_path=resume)
    return best, {k: float(v) for k, v in trainer.callback_metrics.items()}


# per case: val/f1 and val/loss per epoch; the epoch best, loss and last keep
KEPT_EPOCHS = [([0.9, 0.5, 0.6], [1.0, 0.3, 0.8], {"best": 0, "loss": 1, "last": 2}),
               ([0.2, 0.4, 0.7, 0.5], [0.5, 0.9, 0.8, 0.7], {"best": 2, "loss": 0, "last": 3}),
               ([0.3, 0.8, 0.6], [0.9, 0.7, 0.2], {"best": 1, "loss": 2, "last": 2})]


@pytest.mark.parametrize("f1, loss, epochs", KEPT_EPOCHS)
@pytest.mark.parametrize("rule", ["best", "loss", "last"])
def test_each_rule_keeps_its_epoch_and_reports_that_epochs_f1(tmp_path, f1, loss, epochs, rule):
    from mask_cls import keep

    monitor = keep.RULES[rule] or ("val/f1", "max")
    ckpt, metrics = scripted_fit(tmp_path, f1, loss, *monitor)
    path = keep.apply(rule, metrics, ckpt, tmp_path)
    epoch = epochs[rule]
    expected = "last.ckpt" if rule == "last" else f"epoch{epoch:03d}.ckpt"
    assert path == str(tmp_path / expected) and metrics["kept"] == rule
    assert metrics["val/f1_best"] == pytest.approx(f1[epoch])  # the kept epoch's own score, not the maximum
    assert metrics.get("val/f1_max", max(f1)) == pytest.approx(max(f1))
    assert ("val/f1_max" in metrics) == (f1[epoch] != max(f1))
    state = torch.load(path, map_location="cpu", weights_only=False)
    assert state["epoch"] == epoch  # the file is that epoch's model


def test_a_monitor_set_by_hand_reports_the_kept_epochs_f1_not_its_monitor(tmp_path):
    """``callbacks.model_checkpoint.monitor=val/loss`` with ``task.keep=best``: val/f1_best was the loss."""
    from mask_cls import keep

    ckpt, metrics = scripted_fit(tmp_path, [0.9, 0.5, 0.6], [1.0, 0.3, 0.8], "val/loss", "min")
    keep.apply("best", metrics, ckpt, tmp_path)
    assert metrics["val/f1_best"] == pytest.approx(0.5) and metrics["val/f1_max"] == pytest.approx(0.9)


def test_the_kept_epochs_scores_survive_a_resume(tmp_path):
    from mask_cls import keep

    f1, loss = [0.9, 0.5, 0.6, 0.4], [1.0, 0.3, 0.8, 0.9]
    scripted_fit(tmp_path, f1[:2], loss[:2], "val/loss", "min")  # two epochs, then two more after resume=
    ckpt, metrics = scripted_fit(tmp_path, f1, loss, "val/loss", "min", resume=tmp_path / "epoch001.ckpt")
    assert ckpt.best_model_path == str(tmp_path / "epoch001.ckpt")  # no later epoch was better
    keep.apply("loss", metrics, ckpt, tmp_path)
    assert ckpt.at_best["val/f1"] == pytest.approx(0.5) and metrics["val/f1_best"] == pytest.approx(0.5)


@pytest.mark.parametrize("saved, expected", [
    ({"val/f1": 0.5, "val/loss": 0.3}, {"val/f1": 0.5, "val/loss": 0.3}),
    ({"val/f1": float("nan"), "val/loss": float("inf")}, {}),  # not a score
    ({"val/f1": "0.5", "val/loss": [1.0], "train/loss": 0.1, 3: 0.2}, {}),  # not a number, not a val score, not a name
    ("val/f1=0.5", {}), (None, {}),
])
def test_a_checkpoints_saved_scores_come_back_only_as_finite_numbers(tmp_path, saved, expected):
    from mask_cls.callbacks import BestCheckpoint

    cb = BestCheckpoint(dirpath=tmp_path, monitor="val/loss", mode="min")
    cb.load_state_dict({**cb.state_dict(), "at_best": saved})
    assert cb.at_best == expected


def test_keep_loss_monitors_val_loss_and_leaves_the_config_alone():
    from mask_cls import keep
    from mask_cls.errors import ConfigError

    cfg = compose_cfg("task.keep=loss")
    cb = keep.callbacks_config(cfg)
    assert (cb.model_checkpoint.monitor, cb.model_checkpoint.mode) == ("val/loss", "min")
    assert cfg.callbacks.model_checkpoint.monitor == "val/f1"  # the run's config still says what was typed
    assert keep.callbacks_config(compose_cfg("task.keep=best")).model_checkpoint.monitor == "val/f1"
    gone = compose_cfg("task.keep=loss", "~callbacks.model_checkpoint")
    with pytest.raises(ConfigError, match="task.keep=loss: needs callbacks.model_checkpoint"):
        keep.callbacks_config(gone)


@pytest.mark.slow
def test_keep_loss_is_the_model_predicted_with_its_own_f1(tiny_root, tmp_path):
    out = tmp_path / "loss"
    fast = [o for o in FAST if not o.startswith("trainer.max_epochs")]
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *fast, "trainer.max_epochs=3",
                "task.keep=loss")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    log = pd.read_csv(out / "csv" / "metrics.csv").dropna(subset=["val/loss"]).reset_index(drop=True)
    epoch = int(log["val/loss"].idxmin())
    assert epoch != int(log["val/f1"].idxmax())  # in this fixture the rule keeps another model than best would
    assert metrics["kept"] == "loss" and metrics["best_checkpoint"].split("/")[-1].startswith(f"epoch{epoch:03d}")
    assert metrics["val/f1_best"] == pytest.approx(float(log["val/f1"].iloc[epoch]))
    kept = metrics["best_checkpoint"].rsplit("/", 1)[-1]  # the temperatures were fitted for it
    assert json.loads((out / "calibration.json").read_text())["checkpoint"]["name"] == kept
    probs = best_with_hflip_tta(out, tiny_root, "eval")
    assert (pd.read_csv(out / "submission.csv").ans.to_numpy() == probs.argmax(1)).all()
    # the rule picks another epoch, never another training: keep=best's run of the same seed ends with the same weights
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={tmp_path / 'best'}", *fast, "trainer.max_epochs=3")
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = (torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
            for d in (out, tmp_path / "best"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("monitor, score, running, shown", [("val/f1", 0.61, 0.61, "0.6100"),
                                                           ("val/loss", 1.267, 0.4631, "0.4631"),
                                                           ("val/loss", 1.267, None, "0.4426")])
def test_the_epoch_line_shows_the_best_f1_whatever_the_checkpoint_monitors(tmp_path, caplog, monitor, score, running,
                                                                            shown):
    """"val/f1 0.4426 (best ...)": the best F1 so far (the checkpoint's, where it monitors val/f1,
    or the module's running maximum), never task.keep=loss's monitored loss."""
    from types import SimpleNamespace

    from mask_cls.callbacks import BestCheckpoint, TrainingProgress

    ckpt = BestCheckpoint(dirpath=tmp_path, monitor=monitor, mode="max" if monitor == "val/f1" else "min")
    ckpt.best_model_score = torch.tensor(score)
    logged = {"val/f1": torch.tensor(0.4426), "val/loss": torch.tensor(1.3446)}
    if running is not None:
        logged["val/f1_best"] = torch.tensor(running)
    trainer = SimpleNamespace(callback_metrics=logged,
                              callbacks=[ckpt], loggers=[], is_global_zero=True, current_epoch=1, sanity_checking=False,
                              checkpoint_callback=ckpt)
    progress = TrainingProgress(lines=False)
    progress.epochs, progress.epoch_start = 4, 0.0
    with caplog.at_level("INFO", logger="mask_cls"):
        progress.on_train_epoch_end(trainer, None)
    assert f"val/f1 0.4426 (best {shown})" in caplog.text
