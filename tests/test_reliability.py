"""Nothing lost, nothing unsafe: atomic writes, kill and resume, malicious checkpoints, bad images."""

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from mask_cls.checkpoint_io import AtomicCheckpointIO, load_checkpoint
from mask_cls.data import transforms
from mask_cls.data.datasets import ImageDataset
from mask_cls.data.layouts.competition.tables import read_train
from mask_cls.errors import ConfigError, DataError, describe, is_expected
from mask_cls.io import atomic_write, write_json
from tests.conftest import FAST, ROOT, run_cli
from tests.forked import run_forked


def test_atomic_write_keeps_the_previous_file_on_failure(tmp_path):
    path = tmp_path / "metrics.json"
    write_json({"f1": 0.5}, path)

    def broken(p):
        p.write_text('{"f1": 0.')  # half written ...
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    assert json.loads(path.read_text()) == {"f1": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


def test_checkpoint_save_is_atomic(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1}, path)

    def dying_save(self, checkpoint, path, storage_options=None):
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt  # killed while writing

    from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", dying_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create a file when unpickled


@pytest.mark.slow
def test_malicious_checkpoint_is_refused(tiny_root, tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": Payload(str(marker))}}, bad)
    with pytest.raises(ConfigError, match="refused, the checkpoint needs arbitrary unpickling"):
        load_checkpoint(str(bad))
    assert not marker.exists()
    r = run_cli("task=predict", f"run_dir={bad}", "data=mask", f"data.root={tiny_root}",
                f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 1 and "refused" in r.stderr and "allow_unsafe_checkpoint=true" in r.stderr
    assert not marker.exists()
    assert pickle  # the payload above is a pickle exploit, never executed here


def test_checkpoint_that_does_not_match_its_model(tmp_path):
    from mask_cls.module import MaskClassifier
    from tests.conftest import module_config as _module_config

    module = MaskClassifier(_module_config())
    state = {k: v for k, v in module.state_dict().items()}
    state["net.head.fc.weight"] = torch.zeros(3, 3)
    torch.save({"state_dict": state, "hyper_parameters": {"config": _module_config()}}, tmp_path / "m.ckpt")
    with pytest.raises(ConfigError, match="does not match the model it describes"):
        load_checkpoint(str(tmp_path / "m.ckpt"))


def test_bad_image_policy(tiny_copy):
    paths = list(read_train(tiny_copy).image[:3])
    with open(paths[1], "wb") as f:
        f.write(b"garbage")
    tf = transforms.build([32, 24])
    with pytest.raises(DataError, match=f"{os.path.basename(paths[1])}: (unreadable image|not an image)"):
        ImageDataset(paths, [0, 1, 2], tf, on_bad_image="error")[1]
    ds = ImageDataset(paths, [0, 1, 2], tf, on_bad_image="skip")
    assert ds[1] is None and ds.skipped == 1  # dropped from its batch (collate_skipping), never replaced
    with pytest.raises(ConfigError, match="on_bad_image"):
        ImageDataset(paths, None, tf, on_bad_image="ignore")


def test_disk_errors_are_one_line():
    e = OSError(errno.ENOSPC, "No space left on device", "/out/metrics.json")
    assert is_expected(e) and describe(e).startswith("/out/metrics.json: No space left on device")
    assert not is_expected(OSError(errno.EIO, "I/O error"))


@pytest.mark.slow
def test_secrets_never_reach_the_logged_config(tiny_root, tmp_path):
    out = tmp_path / "run"
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *FAST, "task.predict=false",
                "+wandb_api_key=sk-abc123", "+logger.csv.prefix=")
    assert r.returncode == 0, r.stderr[-2000:]
    logged = (out / "csv" / "hparams.yaml").read_text()
    assert "sk-abc123" not in logged and "wandb_api_key" in logged
    assert yaml.safe_load(logged)["data"]["root"] == str(tiny_root)


@pytest.mark.slow
def test_killed_run_resumes_to_completion(tiny_root, tmp_path):
    """Killed (SIGKILL) mid-training, then resumed to the end. The epochs are tiny (~0.2 s): with 12
    of them a poll that lost the CPU for 2-3 s to the other test worker found the run already past
    its last epoch (seen in CI); 30 leave a loaded machine room."""
    epochs = 30
    out = tmp_path / "run"
    args = [sys.executable, str(ROOT / "run.py"), "data=mask", f"data.root={tiny_root}", *FAST, "task.predict=false",
            f"trainer.max_epochs={epochs}", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.Popen([*args, f"hydra.run.dir={out}"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    last = out / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if last.is_file() and torch.load(last, weights_only=True)["epoch"] >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # mid-training
    proc.wait()
    killed_at = torch.load(last, weights_only=True)["epoch"]  # still whole and loadable
    assert 1 <= killed_at < epochs - 1  # mid-training: a loaded machine may kill several epochs late
    metrics = out / "metrics.json"  # written as epochs end, marked running until the run ends
    assert not metrics.exists() or json.loads(metrics.read_text())["running"] is True
    # the resume: what it does, not how a process starts (a child of the warm zygote, tests/forked.py)
    r = run_forked([*args[2:], f"resume={out}", f"hydra.run.dir={tmp_path / 'resumed'}"], tmp_path,
                   {**env, "PYTHONWARNINGS": "ignore"}, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    metrics = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert metrics["epochs"] == epochs  # the same number of epochs as an uninterrupted run
    assert torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == epochs - 1
