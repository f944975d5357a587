"""Two "nodes" on this machine with Lightning's own machinery (NODE_RANK, MASTER_ADDR/PORT,
gloo on CPU): one training run, files written by global rank 0 only, and validation metrics
that equal a single-process evaluation of the same checkpoint."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FAST, ROOT, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_all(procs: list[subprocess.Popen], timeout: float = 600) -> list[int]:
    """Wait for every process; one that fails stops the others (a node left alone waits for its
    peer until the timeout), and the assertion shows the failed one's log."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if any(p.poll() not in (None, 0) for p in procs):
            break
        time.sleep(0.5)
    for p in procs:
        if p.poll() is None:
            p.kill()
    return [p.wait() for p in procs]


@pytest.mark.spawns
def test_two_node_ddp_on_cpu(tiny_root, tmp_path):
    out = tmp_path / "run"
    port = _free_port()
    args = [sys.executable, str(ROOT / "run.py"), "data=mask", f"data.root={tiny_root}", *FAST,
            "data.n_folds=4", "trainer.num_nodes=2", "trainer.devices=1", "trainer.strategy=ddp",
            "trainer.limit_train_batches=2", "task.predict=false", "tta=[none]", f"hydra.run.dir={out}"]
    procs: dict[int, subprocess.Popen] = {}
    for node in (1, 0):  # node 1 first: its Hydra log is in the folder before node 0 looks
        env = {**os.environ, "WANDB_MODE": "disabled", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "NODE_RANK": str(node), "PYTHONWARNINGS": "ignore"}
        log = open(tmp_path / f"node{node}.log", "w")  # a file: a full pipe would stall the node
        procs[node] = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        log.close()
        deadline = time.monotonic() + 120
        while node == 1 and not (out / "run.log").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
    rcs = _wait_all([procs[0], procs[1]])
    results = [(rc, (tmp_path / f"node{n}.log").read_text()) for n, rc in enumerate(rcs)]
    for rc, log in results:
        assert rc == 0, log[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in results[1][1]  # one run over two nodes
    metrics = json.loads((out / "metrics.json").read_text())
    report = json.loads((out / "report" / "scores.json").read_text())
    # the distributed validation (each image once over both processes) == one process's score
    # (tta=[none]: the report predicts as Lightning validated)
    assert abs(metrics["val/f1"] - report["f1"]) < 1e-6, (metrics["val/f1"], report["f1"])
    assert len(list((out / "checkpoints").glob("*.ckpt"))) == 2  # best + last, written once
    assert (out / ".mask_cls_run").read_text().strip() == f"pid {procs[0].pid}"  # rank 0 claimed it


SMALL = ["synth.train_persons=24", "synth.eval_persons=3", "synth.image_size=[64,48]",
         "model.backbone=mobilenetv3_small_050", "data.image_size=[64,48]", "data.batch_size=16",
         "data.num_workers=0", "data.n_folds=3", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
         "trainer.accelerator=cpu", "trainer.enable_progress_bar=false", "task.predict=false"]


def _run(cwd, *args) -> subprocess.CompletedProcess:
    """A sweep forked from a warm process; with a launcher, cold (tests/forked.py)."""
    return run_cli(*args, *SMALL, cwd=cwd)


@pytest.mark.spawns
def test_submitit_local_launcher_two_jobs_and_a_results_table(tmp_path):
    r = _run(tmp_path, "-m", "hydra/launcher=local", "loss=ce,focal")
    assert r.returncode == 0, r.stderr[-3000:]
    import pandas as pd

    sweep = next((tmp_path / "outputs" / "train" / "multiruns").iterdir())
    table = pd.read_csv(sweep / "sweep_results.csv")
    assert sorted(table["overrides"]) == ["loss=ce", "loss=focal"] and set(table["status"]) == {"ok"}
    for job in table["run_dir"]:
        assert json.loads((Path(job) / "metrics.json").read_text())["epochs"] == 1  # a real run each
    assert "sweep results (2 jobs)" in r.stdout


def test_optuna_study_in_a_shared_database_never_repeats_a_trial(tmp_path):
    """The README's shared-study command, typed twice (two sessions adding to one study)."""
    import shlex

    import optuna

    (line,) = [ln.split("#")[0] for ln in (ROOT / "README.md").read_text().splitlines()
               if ln.startswith("python run.py") and "study_name=shared" in ln]
    for _ in range(2):
        r = _run(tmp_path, *shlex.split(line)[2:])
        assert r.returncode == 0, r.stderr[-3000:]
    url = f"sqlite:///{tmp_path / 'outputs' / 'shared.db'}"
    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert len(trials) == 4
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 4, params
