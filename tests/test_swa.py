"""callbacks=swa: Lightning's StochasticWeightAveraging, and the averaged weights are the run's model."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from tests.conftest import FAST, run_cli
from tests.test_cli import best_with_hflip_tta


def test_swa_and_ema_together_are_refused():
    from lightning.pytorch.callbacks import StochasticWeightAveraging

    from mask_cls.callbacks import WarmupEMA, check_averaging
    from mask_cls.errors import ConfigError

    check_averaging([StochasticWeightAveraging(swa_lrs=1e-4)])  # one averaging: fine
    with pytest.raises(ConfigError, match="choose one weight averaging"):
        check_averaging([StochasticWeightAveraging(swa_lrs=1e-4), WarmupEMA()])


@pytest.mark.slow
def test_swa_weights_are_the_epoch_average_and_predict_uses_them(tiny_root, tmp_path):
    """Every epoch's checkpoint kept. Lightning averages the weights at the start of each epoch
    from ``swa_epoch_start`` (1-based; a share: of max_epochs) to the last: with 4 epochs and 0.75,
    the starts of epochs 3 and 4, i.e. the weights saved after epochs 2 and 3 (e1, e2 in 0-based
    names). swa.ckpt's parameters are their mean, computed here; its BatchNorm statistics are
    recomputed, so they are not an average; the run's best checkpoint and submission are the
    averaged model's."""
    out = tmp_path / "swa"
    fast = [o for o in FAST if not o.startswith("trainer.max_epochs")]
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *fast, "trainer.max_epochs=4",
                "callbacks=swa", "callbacks.swa.swa_epoch_start=0.75", "callbacks.swa.swa_lrs=0.01",
                "callbacks.model_checkpoint.save_top_k=-1", "callbacks.model_checkpoint.filename='e{epoch}'",
                "callbacks.model_checkpoint.monitor=null")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_checkpoint"] == str(out / "checkpoints" / "swa.ckpt")
    assert 0 <= metrics["val/f1_swa"] <= 1
    # what sweeps optimise is the score of the model the run keeps, and the run says which it kept
    assert metrics["val/f1_best"] == metrics["val/f1_swa"] and metrics["kept"] == "swa"
    assert metrics["epochs"] == 4  # training epochs; SWA's BatchNorm pass is not one

    def state(name: str) -> dict[str, torch.Tensor]:
        return torch.load(out / "checkpoints" / name, map_location="cpu", weights_only=True)["state_dict"]

    swa, e1, e2 = state("swa.ckpt"), state("e1.ckpt"), state("e2.ckpt")
    params = [k for k in swa if k.startswith("net.") and "running_" not in k and "num_batches" not in k]
    assert params and any(not torch.equal(e1[k], e2[k]) for k in params)  # the epochs moved the weights
    for k in params:
        torch.testing.assert_close(swa[k], (e1[k] + e2[k]) / 2, rtol=1e-5, atol=1e-6)
    stats = [k for k in swa if k.endswith("running_mean")]
    assert stats and any(not torch.allclose(swa[k], (e1[k] + e2[k]) / 2) for k in stats)  # recomputed
    probs = best_with_hflip_tta(out, tiny_root, "eval")
    assert (pd.read_csv(out / "submission.csv").ans.to_numpy() == probs.argmax(1)).all()


class _Tiny:
    """A LightningModule of one linear layer on random data: SWA's bookkeeping without a network."""

    @staticmethod
    def fit(max_epochs: int, swa_epoch_start: float, **trainer_kw):
        import lightning.pytorch as pl
        from lightning.pytorch.callbacks import Callback, StochasticWeightAveraging
        from torch.utils.data import DataLoader, TensorDataset

        class Model(pl.LightningModule):
            def __init__(self):
                super().__init__()
                self.layer = torch.nn.Linear(4, 2)

            def training_step(self, batch, _):
                x, y = batch
                return torch.nn.functional.cross_entropy(self.layer(x), y)

            def configure_optimizers(self):
                return torch.optim.SGD(self.parameters(), lr=0.1)

        class Snapshots(Callback):  # the weights at the start of each epoch (what SWA averages)
            def __init__(self):
                self.seen = []

            def on_train_epoch_start(self, trainer, module):
                self.seen.append(trainer.current_epoch)

        data = TensorDataset(torch.randn(32, 4), torch.randint(0, 2, (32,)))
        swa, snaps = StochasticWeightAveraging(swa_lrs=0.01, swa_epoch_start=swa_epoch_start), Snapshots()
        trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[swa, snaps], logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", **trainer_kw)
        trainer.fit(Model(), DataLoader(data, batch_size=8))
        return swa, snaps, trainer


@pytest.mark.parametrize("start, averaged", [(0.75, 2), (0.5, 3), (2, 3)])
def test_swa_snapshot_counts_as_the_readme_states(start, averaged):
    """4 epochs: the default start (0.75) averages two snapshots, 0.5 three, a 1-based epoch 2
    three (README, ``callbacks=swa``; ``bench/recipes.py``'s ``swa`` arm uses 0.5)."""
    from mask_cls.callbacks import averaging_finished

    swa, snaps, trainer = _Tiny.fit(4, start)
    assert int(swa.n_averaged) == averaged
    assert snaps.seen[-averaged:] == list(range(4 - averaged, 4)) and averaging_finished(trainer, [swa])


def test_swa_that_stops_early_is_not_finished():
    from mask_cls.callbacks import averaging_finished

    swa, _, trainer = _Tiny.fit(4, 0.5, max_steps=6)  # stops in the second epoch, before any average
    assert not averaging_finished(trainer, [swa])


@pytest.mark.slow
def test_a_fit_stopped_before_averaging_keeps_its_best_checkpoint_and_says_why(tiny_root, tmp_path):
    out = tmp_path / "stopped"
    fast = [o for o in FAST if not o.startswith(("trainer.max_epochs", "trainer.limit_train_batches"))]
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *fast, "trainer.max_epochs=4",
                "trainer.limit_train_batches=3", "+trainer.max_steps=4", "callbacks=swa", "task.predict=false")
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert "before its averaging finished" in r.stdout + r.stderr
    assert not (out / "checkpoints" / "swa.ckpt").exists() and metrics["kept"] == "best"
    assert metrics["best_checkpoint"].endswith(".ckpt") and "swa" not in metrics["best_checkpoint"]
    assert "val/f1_swa" not in metrics and metrics["epochs"] == 2


def test_the_terminal_bar_counts_epochs_from_one_as_the_log_lines_do(capsys):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from mask_cls.callbacks import EpochBar

    class Model(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def training_step(self, batch, _):
            x, y = batch
            return torch.nn.functional.cross_entropy(self.layer(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = DataLoader(TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,))), batch_size=4)
    pl.Trainer(max_epochs=3, callbacks=[EpochBar()], logger=False, enable_checkpointing=False,
               enable_model_summary=False, accelerator="cpu").fit(Model(), data)
    captured = capsys.readouterr()
    shown = captured.out + captured.err  # Lightning's tqdm writes to stdout
    assert "Epoch 1/3" in shown and "Epoch 3/3" in shown and "Epoch 0" not in shown
