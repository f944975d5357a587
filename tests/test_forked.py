"""tests/forked.py stands in for a cold ``python run.py`` only where it gives what a cold process
gives: the same files, the same screen, the same exit status; a timeout stops the child."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.forked import run_forked, wanted

TINY = ["model.backbone=mobilenetv3_small_050", "data.image_size=[64,48]", "data.batch_size=16", "data.num_workers=0",
        "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false"]


def _screen(text: str) -> list[str]:
    """Printed lines without what differs between two runs anyway (times, folders, speeds)."""
    text = re.sub(r"\[\d{4}-\d\d-\d\d [\d:,]+\]", "[T]", text)
    text = re.sub(r"/\S*/(cold|forked)\b", "DIR", text)
    text = re.sub(r"[\d.]+ (images|batches)/s|\d+:\d\d left|done in \d+:\d\d", "~", text)
    return text.splitlines()


@pytest.mark.slow
def test_a_forked_run_writes_and_prints_what_a_cold_run_does(tiny_root, tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    args = ["data=mask", f"data.root={tiny_root}", *TINY]
    cold = subprocess.run([sys.executable, str(ROOT / "run.py"), *args, f"hydra.run.dir={tmp_path / 'cold'}"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    forked = run_forked([*args, f"hydra.run.dir={tmp_path / 'forked'}"], tmp_path, env)
    assert cold.returncode == forked.returncode == 0, forked.stderr[-2000:]
    assert _screen(forked.stdout) == _screen(cold.stdout)
    assert _screen(forked.stderr) == _screen(cold.stderr)  # Lightning's INFO lines stay off the screen in both
    files = [sorted(str(p.relative_to(tmp_path / d)) for p in (tmp_path / d).rglob("*")) for d in ("cold", "forked")]
    assert files[0] == files[1]
    for name in ("submission.csv", "report/predictions.csv"):  # seeded: the same numbers
        assert (tmp_path / "forked" / name).read_text() == (tmp_path / "cold" / name).read_text()
    assert _screen((tmp_path / "forked" / "run.log").read_text()) == _screen((tmp_path / "cold" / "run.log").read_text())


@pytest.mark.slow
def test_a_forked_command_has_its_own_exit_status_folder_and_environment(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore", "MASK_CLS_PROBE": "x"}
    r = run_forked(["modle=x"], tmp_path, env)
    assert r.returncode == 1 and r.stdout == "" and r.stderr.startswith("error: modle: no such key")
    r = run_forked(["task=evaluate", "submission=s.csv", "answers=a.csv", "hydra.run.dir=e"], tmp_path, env)
    assert r.returncode == 1 and "s.csv: submission file not found" in r.stderr
    assert (tmp_path / "e" / "failed.txt").read_text().startswith("s.csv: submission file not found")  # its cwd
    assert os.environ.get("MASK_CLS_PROBE") is None and Path.cwd() != tmp_path  # the caller's own untouched


@pytest.mark.slow
def test_a_forked_command_past_its_timeout_is_stopped(tiny_root, tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    t = time.perf_counter()
    with pytest.raises(subprocess.TimeoutExpired):
        long = [a for a in TINY if not a.startswith(("trainer.max_epochs", "trainer.limit_train"))]
        run_forked(["data=mask", f"data.root={tiny_root}", *long, "trainer.max_epochs=1000",
                    f"hydra.run.dir={tmp_path / 'r'}"], tmp_path, env, timeout=5)
    assert time.perf_counter() - t < 60
    r = run_forked(["modle=x"], tmp_path, env)  # the zygote still serves
    assert r.returncode == 1


@pytest.mark.parametrize(("overrides", "forked"), [
    (["-m", "loss=ce,focal"], True), (["hparams_search=optuna"], True),
    (["trainer=ddp"], False), (["trainer.devices=2"], False), (["trainer.num_nodes=2"], False),
    (["task.launcher=slurm"], True), (["hydra/launcher=local"], False), (["trainer.max_epochs=2"], True),
])
def test_processes_that_start_from_argv_stay_cold(overrides, forked):
    assert wanted(overrides) is forked


@pytest.mark.slow
def test_a_command_started_by_a_running_command_is_a_sibling_and_answers_first(tiny_root, tmp_path):
    """``task=confirm`` starts ``python run.py`` per job: the running child asks the zygote over its
    socket for a sibling, which answers while the first still runs (no wait on each other), with its
    own status and output."""
    import threading

    from tests import forked

    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    run_forked(["modle=x"], tmp_path, env)  # the zygote is up
    zygote = forked._zygote
    assert zygote is not None
    long = [a for a in TINY if not a.startswith(("trainer.max_epochs", "trainer.limit_train"))]
    first: list = []
    worker = threading.Thread(target=lambda: first.append(run_forked(
        ["data=mask", f"data.root={tiny_root}", *long, "trainer.max_epochs=3", f"hydra.run.dir={tmp_path / 'r'}"],
        tmp_path, env)))
    worker.start()
    time.sleep(1)
    nested = forked.Client.ask(os.path.join(zygote.folder.name, "s"), ["modle=x"], tmp_path, env, 60)
    assert worker.is_alive() and not first  # answered while the first child still trains
    assert nested.returncode == 1 and nested.stderr.startswith("error: modle: no such key")
    worker.join(300)
    assert first[0].returncode == 0, first[0].stderr[-2000:]
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epochs"] == 3


def test_an_answer_read_together_with_the_one_before_is_not_waited_for():
    """The pid and the exit status of a child that ends at once can arrive in one read: the second
    is taken from what was read, not waited for on the pipe; a closed pipe is an error, not a hang."""
    from tests.forked import _Asker

    r, w = os.pipe()
    asker = _Asker()
    asker.fd = r
    os.write(w, b'{"pid": 7}\n{"code": 1}\n{"pi')
    assert asker._read(5) == {"pid": 7}
    t = time.perf_counter()
    assert asker._read(5) == {"code": 1} and time.perf_counter() - t < 1
    os.write(w, b'd": 8}\n')  # a line split across two reads
    assert asker._read(5) == {"pid": 8}
    os.close(w)
    with pytest.raises(RuntimeError, match="stopped answering"):
        asker._read(5)
    os.close(r)


def test_a_run_py_command_goes_to_the_runner_with_its_output_where_the_caller_asked(tmp_path, monkeypatch):
    """What both the test process (benchmark scripts) and a forked child (confirm's jobs) install:
    ``subprocess.run`` of this repository's run.py goes to the runner, with PYTHONWARNINGS=ignore,
    its output in the caller's file (stderr joined), ``check`` honoured; a command that must start
    cold (a launcher) and any other program go to the real ``subprocess.run``, put back afterwards."""
    from tests.forked import _patched_run

    started, asked = [], []

    def real(cmd, *args, **kwargs):  # stands in for subprocess.run: nothing starts in this test
        started.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, "real\n", "")

    def runner(argv, cwd, env, timeout):
        asked.append((argv, cwd, env["PYTHONWARNINGS"], timeout))
        return subprocess.CompletedProcess(argv, 3 if "fail=1" in argv else 0, "out\n", "err\n")

    monkeypatch.setattr(subprocess, "run", real)
    monkeypatch.setenv("PYTHONWARNINGS", "default")
    with _patched_run(runner):
        with open(tmp_path / "job.log", "w") as sink:
            r = subprocess.run([sys.executable, str(ROOT / "run.py"), "seed=1"], stdout=sink,
                               stderr=subprocess.STDOUT, cwd=tmp_path)
        captured = subprocess.run([sys.executable, "run.py", "seed=2"], cwd=ROOT, capture_output=True, text=True)
        with pytest.raises(subprocess.CalledProcessError):
            subprocess.run([sys.executable, str(ROOT / "run.py"), "fail=1"], check=True)
        subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True)
        subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", "hydra/launcher=local"])
        subprocess.run([sys.executable, str(tmp_path / "run.py"), "seed=3"])  # another folder's run.py
    assert subprocess.run is real
    assert r.returncode == 0 and r.stdout is None and (tmp_path / "job.log").read_text() == "out\nerr\n"
    assert (captured.stdout, captured.stderr) == ("out\n", "err\n")
    assert [a[0] for a in asked] == [["seed=1"], ["seed=2"], ["fail=1"]]
    assert asked[0][1] == tmp_path and {a[2] for a in asked} == {"ignore"} and asked[0][3] == 900
    assert [c[-1] for c in started] == ["print(1)", "hydra/launcher=local", "seed=3"]
