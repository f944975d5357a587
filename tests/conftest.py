"""Shared fixtures and helpers: a tiny synthetic dataset, run.py run like a user, the real config
composed, option files and a small module config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# `make test` runs two workers on 2 cores, and most tests start run.py: with torch's default of one
# thread per core two processes oversubscribe the cores, 2.4x slower (bench/parallel_runs.py,
# BENCHMARKS.md "Test suite"). Set before torch is imported; the tests' subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from mask_cls.data.synthetic import SynthConfig, generate  # noqa: E402
from tests import forked, inprocess, slow_marks  # noqa: E402  # from here on, only a test marked slow starts a command

ROOT = Path(__file__).resolve().parents[1]
TINY = SynthConfig(train_persons=30, eval_persons=4, image_size=(64, 48), seed=3, workers=1)
# a tiny model and small images: a few seconds per run on 2 cores
FAST = [
    "model.backbone=mobilenetv3_small_050", "data.image_size=[64,48]", "data.batch_size=16",
    "data.num_workers=0", "data.persistent_workers=false", "data.n_folds=3",
    "trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
]


@pytest.fixture(autouse=True)
def _seeded_rngs() -> None:
    """Every test starts from the same global random state (python, numpy, torch), so none
    depends on what ran before it in its worker: with xdist's worksteal the order differs from
    run to run, and a test that built a network before seeding once failed that way."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A read-only-by-convention tiny dataset in the competition layout."""
    root = tmp_path_factory.mktemp("data") / "tiny"
    generate(root, TINY, progress=False)
    return root


@pytest.fixture(scope="session")
def cv_run(tiny_root, tmp_path_factory) -> Path:
    """A 2-fold cv run of FAST on the tiny set (read-only by convention; shared by the cv,
    predict and distillation tests of one worker)."""
    out = tmp_path_factory.mktemp("cv") / "run"
    fast = [a for a in FAST if not a.startswith("data.n_folds")]
    r = run_cli("task=cv", "data=mask", f"data.root={tiny_root}", "data.n_folds=2", f"hydra.run.dir={out}", *fast)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def trained(tiny_root, tmp_path_factory) -> Path:
    """One tiny train run of FAST on the tiny set, as a colleague would share it (read-only by
    convention: a test that changes it works on a copy); shared by the CLI and attack tests."""
    out = tmp_path_factory.mktemp("trained") / "run"
    r = run_cli("data=mask", f"data.root={tiny_root}", *FAST, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture
def tiny_copy(tiny_root, tmp_path) -> Path:
    """A private copy to corrupt."""
    dst = tmp_path / "data"
    shutil.copytree(tiny_root, dst)
    return dst


def run_cli(*overrides: str, cwd: Path | None = None, timeout: int = 600,
            env: dict | None = None, in_process: bool | None = None) -> subprocess.CompletedProcess:
    """``python run.py *overrides``: in this process where it can be (``tests/inprocess.py``: the
    same entry point without a new interpreter's imports), else as a process of its own forked from
    a warm one (``tests/forked.py``: sweeps), else cold; ``in_process=False`` where the subject is
    what only a cold process shows (printed warnings, signals, timing, launchers, DDP)."""
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore", **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    if in_process is not False and inprocess.wanted(overrides, env):
        return inprocess.run_in_process(overrides, cwd or ROOT, env)
    if in_process is not False and forked.wanted(overrides):  # its own process, without the imports
        return forked.run_forked(list(overrides), cwd or ROOT, env, timeout)
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *overrides],
        cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


def compose_cfg(*overrides: str, out: Path | None = None):
    """``conf/config.yaml`` composed as run.py composes it (same resolvers), with ``overrides``;
    ``out`` stands for the run directory Hydra would have made."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from mask_cls.resolvers import register

    register()
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    if out is not None:
        OmegaConf.update(cfg, "paths.output_dir", str(out))
    return cfg


#: the tests of minutes each on 2 cores (`pytest --durations=10`), longest first; they run first, and
#: with them every ``spawns`` test: ``--dist worksteal`` gives the first half of the list to one
#: worker, so none of them waits on the spawn lock while the other worker runs another
LONGEST = ("test_every_readme_command_as_typed", "test_readme_is_my_change_real", "test_confirm_through_a_hydra_launcher",
           "test_bench_quick[startup]", "test_bench_quick[parallel_runs]", "test_recipes_", "test_ddp_sim_two_processes",
           "test_two_node_ddp_on_cpu", "test_submitit_local_launcher_two_jobs")


@pytest.fixture(autouse=True)
def _one_spawning_test_at_a_time(request, tmp_path_factory):
    """Tests marked ``spawns`` start several processes that work at once; two such tests on the two
    workers would put four busy processes on two cores. A lock file shared by the workers (beside
    their temp folders) lets one run at a time; the other worker waits for it."""
    if request.node.get_closest_marker("spawns") is None:
        yield
        return
    with spawn_lock(tmp_path_factory.getbasetemp().parent):
        yield


def spawn_lock(folder: Path):
    """The lock the ``spawns`` tests of every worker share (a file in ``folder``)."""
    from filelock import FileLock

    return FileLock(str(folder / "spawns.lock"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    slow_marks.running["slow"] = item.get_closest_marker("slow") is not None  # before its fixtures start anything


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem) -> None:
    slow_marks.running.clear()


def pytest_collection_modifyitems(items) -> None:
    """The ``LONGEST`` tests move to the front (a stable sort, the same order in every xdist
    worker): a test of several minutes that starts late leaves the other worker idle at the end."""
    items.sort(key=lambda item: next((i for i, name in enumerate(LONGEST) if name in item.nodeid), len(LONGEST)))


def conf_group(group: str, name: str) -> dict:
    """One option file of a config group, as a plain dict (no composition)."""
    return OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml"))


def module_config(optim="adamw", sched="cosine") -> dict:
    """The module config (``ModuleConfig.as_dict``) of a small linear-head CE model (resnet10t),
    built from the option files as a run builds it."""
    from mask_cls.module_config import ModuleConfig

    model = conf_group("model", "timm") | {"backbone": "resnet10t"}
    run = {"model": model, "head": conf_group("head", "linear"), "loss": conf_group("loss", "ce"),
           "optim": conf_group("optim", optim), "sched": conf_group("sched", sched)}
    return ModuleConfig.from_run_config(run).as_dict()