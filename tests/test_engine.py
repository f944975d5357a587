"""Experiment management and the training engine, through run.py on the tiny set."""

import json
import math

import pandas as pd
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from mask_cls.checkpoint_io import load_checkpoint
from mask_cls.engine import checked
from tests.conftest import FAST, ROOT, run_cli


def _run(tiny_root, out, *extra, env=None):
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *FAST, "tta=[none]", *extra, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def _sweep_dir(cwd):
    """The one sweep folder a command typed in ``cwd`` made (the default place, as users get it)."""
    (sweep,) = [p for p in (cwd / "outputs" / "train" / "multiruns").iterdir() if p.is_dir()]  # optuna.db beside
    return sweep


@pytest.mark.slow
def test_multirun_sweep_two_values_two_folders(tiny_root, tmp_path):
    r = run_cli("-m", "loss=ce,focal", "data=mask", f"data.root={tiny_root}", *FAST, "task.predict=false",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    sweep = _sweep_dir(tmp_path)
    for i, loss in enumerate(("ce", "focal")):
        assert (sweep / str(i) / "metrics.json").is_file()
        assert f"loss={loss}" in (sweep / str(i) / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.slow
def test_optuna_sweep_three_trials_survives_a_failed_one(tiny_root, tmp_path):
    fast = [a for a in FAST if not a.startswith("model.backbone")]
    r = run_cli("hparams_search=optuna", "data=mask", f"data.root={tiny_root}", *fast, "task.predict=false", "seed=2",
                "hydra.sweeper.n_trials=3", "hydra.sweeper.max_failure_rate=1.0",
                "hydra.sweeper.sampler.n_startup_trials=3",
                "model.backbone=choice(resnet10t,no_such_net)",  # a sweep dimension from the command line
                cwd=tmp_path)  # the default storage (outputs/train/multiruns/optuna.db) of a fresh working directory
    assert r.returncode == 0, r.stderr[-3000:]
    sweep = _sweep_dir(tmp_path)
    db = tmp_path / "outputs" / "train" / "multiruns" / "optuna.db"
    assert db.is_file()
    studies = [line for line in r.stdout.splitlines() if "Optuna study mask_cls_train_" in line]
    assert len(studies) == 1 and str(db) in studies[0]  # said at the start, keyed by data and search space
    done = [d for d in sweep.iterdir() if (d / "metrics.json").is_file()]
    jobs = [d for d in sweep.iterdir() if (d / ".hydra").is_dir()]
    assert len(jobs) == 3 and 0 < len(done) < 3  # the bad backbone failed, the sweep went on
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    values = [json.loads((d / "metrics.json").read_text())["val/f1_best"] for d in done]
    assert best["best_value"] == pytest.approx(max(values))
    # a failed trial has no metrics.json: the table lists it, and the winner's curse is named with the
    # commands that test the best trial (every searched key's default as the reference)
    table = pd.read_csv(sweep / "sweep_results.csv")
    assert len(table) == 3 and (table.status != "ok").sum() == 3 - len(done)
    (hint,) = [line for line in r.stdout.splitlines() if "task=confirm runs=[" in line]
    best_jobs = [d for d in done if json.loads((d / "metrics.json").read_text())["val/f1_best"] == max(values)]
    assert any(f"runs=[{d}]" in hint or f"runs=[{d.relative_to(tmp_path)}]" in hint for d in best_jobs), hint
    searched = hint.split("task.without=[")[1].split("]")[0].split(",")
    assert {"model.backbone", "optim.lr", "optim.weight_decay", "loss", "data.batch_size"} <= set(searched)
    assert "seed" not in searched


def test_nan_metric_raises_instead_of_being_returned():
    with pytest.raises(FloatingPointError):
        checked({"val/f1_best": math.nan}, "val/f1_best")
    assert checked({"val/f1_best": 0.5}, "val/f1_best") == 0.5


@pytest.mark.slow
def test_ddp_under_multirun_is_refused(tiny_root, tmp_path):
    r = run_cli("-m", "trainer.strategy=ddp", "trainer.devices=2", "data=mask", f"data.root={tiny_root}", *FAST,
                cwd=tmp_path)
    assert r.returncode != 0 and "use trainer=ddp_spawn for sweeps" in r.stderr


@pytest.mark.slow
@pytest.mark.spawns
def test_ddp_sim_two_processes(tiny_root, tmp_path):
    out = tmp_path / "ddp"
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *FAST, "tta=[none]", "trainer=ddp_sim",
                "trainer.limit_train_batches=2", env={"PYTHONWARNINGS": "default"})
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    report = json.loads((out / "report" / "scores.json").read_text())  # one process, every validation image once
    assert abs(m["val/f1"] - report["f1"]) < 1e-6 and (out / "submission.csv").is_file()
    assert "sync_dist=True" not in r.stdout + r.stderr  # figures are torchmetrics results, reduced already


@pytest.mark.slow
def test_bf16_mixed_on_cpu(tiny_root, tmp_path):
    """bf16 autocast really runs (the same seeded run's loss moves by rounding) and stays close to fp32."""
    bf16 = _run(tiny_root, tmp_path / "bf16", "trainer.precision=bf16-mixed", "task.predict=false")
    fp32 = _run(tiny_root, tmp_path / "fp32", "trainer.precision=32-true", "task.predict=false")
    assert bf16["val/loss"] != fp32["val/loss"]
    assert bf16["val/loss"] == pytest.approx(fp32["val/loss"], rel=0.05)


@pytest.mark.slow
def test_resume_continues_at_the_right_epoch(tiny_root, tmp_path):
    first = _run(tiny_root, tmp_path / "a", "trainer.max_epochs=1", "task.predict=false")
    assert first["epochs"] == 1
    before = {f: f.read_bytes() for f in (tmp_path / "a").rglob("*") if f.is_file()}
    second = _run(tiny_root, tmp_path / "b", f"resume={tmp_path / 'a'}", "trainer.max_epochs=3", "task.predict=false")
    # the resumed run writes only into its own folder: the earlier run is byte-identical
    assert {f: f.read_bytes() for f in (tmp_path / "a").rglob("*") if f.is_file()} == before
    assert second["epochs"] == 3
    ckpt = torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 3 * 3  # 3 batches an epoch, none repeated
    # the best of every epoch of both runs, not of the resumed epochs only
    logged = pd.concat([pd.read_csv(tmp_path / d / "csv" / "metrics.csv")["val/f1"].dropna() for d in "ab"])
    assert len(logged) == 3 and second["val/f1_best"] == pytest.approx(logged.max(), abs=1e-6)


@pytest.mark.slow
def test_compiled_model_checkpoint_loads_uncompiled(tiny_root, tmp_path):
    _run(tiny_root, tmp_path / "c", "engine.compile=true", "engine.compile_backend=eager", "task.predict=false")
    state = torch.load(tmp_path / "c" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in k for k in state)
    module = load_checkpoint(str(tmp_path / "c" / "checkpoints" / "last.ckpt"))  # strict load, uncompiled
    assert set(module.state_dict()) == set(state)


@pytest.mark.slow
def test_ema_weights_are_validated_and_saved(tiny_root, tmp_path):
    _run(tiny_root, tmp_path / "e", "callbacks=ema", "callbacks.ema.decay=0.5", "task.predict=false")
    ckpt = torch.load(tmp_path / "e" / "checkpoints" / "last.ckpt", weights_only=True)
    raw, saved = ckpt["current_model_state"], ckpt["state_dict"]
    key = next(k for k in saved if k.endswith("head.fc.weight"))
    assert not torch.equal(raw[key], saved[key])  # EMA differs from the raw weights ...
    module = load_checkpoint(str(tmp_path / "e" / "checkpoints" / "last.ckpt"))
    assert torch.equal(module.state_dict()[key], saved[key])  # ... and is what a checkpoint gives


def test_ema_decay_warms_up_against_a_loop():
    """callbacks=ema averages as a loop written here: the first update copies the weights, the
    n-th (n >= 1 averaged so far) uses decay min(0.9, (1 + n) / (10 + n)); Lightning's fixed
    decay would keep 0.9^k of the first weights."""
    from torch.optim.swa_utils import AveragedModel

    from mask_cls.callbacks import WarmupEMA

    cb = WarmupEMA(decay=0.9)
    net = torch.nn.Linear(3, 2)
    avg = AveragedModel(net, use_buffers=True, **cb._kwargs)
    ref = None
    torch.manual_seed(0)
    for n in range(40):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        avg.update_parameters(net)
        w = net.weight.detach().clone()
        ref = w if ref is None else min(0.9, (1 + n) / (10 + n)) * ref + (1 - min(0.9, (1 + n) / (10 + n))) * w
        assert torch.allclose(avg.module.weight, ref, atol=1e-5)
    assert avg.n_averaged == 40
    fixed = AveragedModel(net, use_buffers=True, **WarmupEMA(decay=0.9, warmup=False)._kwargs)
    first = net.weight.detach().clone()
    fixed.update_parameters(net)
    with torch.no_grad():
        net.weight.add_(1.0)
    fixed.update_parameters(net)  # warmup=false is Lightning's own fixed decay from the first update
    assert torch.allclose(fixed.module.weight, 0.9 * first + 0.1 * net.weight.detach(), atol=1e-6)


@pytest.mark.slow
def test_two_seeded_runs_match(tiny_root, tmp_path):
    a = _run(tiny_root, tmp_path / "s1", "seed=7", "trainer.deterministic=true", "task.predict=false")
    b = _run(tiny_root, tmp_path / "s2", "seed=7", "trainer.deterministic=true", "task.predict=false")
    for k in ("val/f1", "val/loss", "train/loss"):
        assert a[k] == b[k]


@pytest.mark.slow
def test_wandb_offline_run_folder_has_the_metrics(tiny_root, tmp_path):
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DIR": str(tmp_path)}
    _run(tiny_root, tmp_path / "w", "logger=csv_wandb", "task.predict=false", env=env)
    runs = list((tmp_path / "w" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    records = next(runs[0].glob("run-*.wandb")).read_bytes()  # the log `wandb sync` uploads
    assert b"val/f1_best" in records and b"train/loss" in records
    figures = {p.name.split("_")[0] for p in (runs[0] / "files" / "media" / "images").rglob("*.png")}
    assert {"confusion", "mistakes"} <= figures  # the report's figures go to wandb too


@pytest.mark.parametrize("name,key,value", [("fdr", "fast_dev_run", True), ("overfit", "overfit_batches", 1),
                                            ("limit", "limit_train_batches", 5), ("profiler", "profiler", "simple")])
def test_debug_configs_set_their_trainer_switch(name, key, value):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"debug={name}"])
        plain = compose("config")
    assert cfg.trainer[key] == value and plain.trainer[key] != value


@pytest.mark.parametrize("length", [63, 64, 65, 300])
def test_wandb_tags_are_never_longer_than_wandb_takes(length):
    """A typed override of a long path (data.root=/a/long/...) used to stop a wandb run at its start."""
    from wandb.sdk.wandb_settings import Settings

    from mask_cls.engine import WANDB_TAG, _wandb_identity

    long = "data.root=/" + "x" * (length - len("data.root=/"))
    tags = _wandb_identity({"name": "n", "group": "g", "job_type": "train", "overrides": [long, "loss=focal"]})["tags"]
    assert all(len(t) <= WANDB_TAG for t in tags) and tags[1] == "loss=focal"
    assert tags[0] == long if length <= WANDB_TAG else tags[0].endswith("…")
    Settings(run_tags=tuple(tags))  # what wandb.init checks
    if length > WANDB_TAG:
        with pytest.raises(ValueError):
            Settings(run_tags=(long,))
