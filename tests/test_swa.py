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
