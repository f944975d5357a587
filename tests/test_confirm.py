"""``task=confirm``: which seeds are new, which recipe each side trains, and the hint a sweep
prints. In-process; the command itself runs as typed in ``tests/test_readme.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mask_cls.errors import ConfigError
from mask_cls.sweep import next_steps, sweep_table
from mask_cls.tasks.confirm import MAX_SEEDS, _recipe, _used_seeds, seeds_for
from tests.conftest import ROOT


@pytest.mark.parametrize("spec, used, expected", [
    (3, {0, 1, 2}, [3, 4, 5]), (2, set(), [0, 1]), (2, {7}, [8, 9]),
    ([10, 11], {0, 1}, [10, 11]), (MAX_SEEDS, set(), list(range(MAX_SEEDS))),
])
def test_new_seeds_follow_every_seed_used(spec, used, expected):
    assert seeds_for(spec, used) == expected


@pytest.mark.parametrize("spec, used, match", [
    ([1, 5], {0, 1}, "already used"), ([4, 4], set(), "repeats"), (1, set(), "2 to"),
    (MAX_SEEDS + 1, set(), "2 to"), (True, set(), "a number of seeds"), ("5", set(), "a number of seeds"),
])
def test_seeds_that_cannot_confirm_are_refused(spec, used, match):
    with pytest.raises(ConfigError, match=match):
        seeds_for(spec, used)


def _run(folder, overrides, seed, value=0.5, root="/data/faces"):
    (folder / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "task": {"name": "train", "optimized_metric": "val/f1_best"},
              "data": {"root": root, "csv": None, "split_seed": 42}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, f"seed={seed}"]))
    (folder / "metrics.json").write_text(json.dumps({"val/f1_best": value}))
    return folder


def test_a_sweep_jobs_seeds_are_used_seeds(tmp_path):
    for i, seed in enumerate((0, 1, 7)):
        _run(tmp_path / "sweep" / str(i), ["loss=ce"], seed)
    _run(tmp_path / "other", ["loss=focal"], 3)
    assert _used_seeds([str(tmp_path / "sweep" / "0"), str(tmp_path / "other")]) == {0, 1, 7, 3}
    assert seeds_for(2, _used_seeds([str(tmp_path / "sweep" / "1")])) == [8, 9]


def _recipe_of(*args):
    from hydra import initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return _recipe(*args)


def test_each_side_trains_its_runs_recipe_and_data_never_its_places(tmp_path):
    run = _run(tmp_path / "best", ["loss=focal", "optim.lr=0.003", "data.num_workers=0",
                                   f"hydra.run.dir={tmp_path}/best", "data.root=/data/faces"], 4,
               root="/data/my faces, 'v2'")
    task, lines = _recipe_of(str(run), [], [])
    assert task == "train"
    assert lines == ["loss=focal", "optim.lr=0.003", "data.root='/data/my faces, \\'v2\\''"]
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides([lines[-1]])[0]
    assert parsed.value() == "/data/my faces, 'v2'"  # one token, whatever the path holds
    # the reference of a one-run confirmation: the recipe without the searched keys (their defaults)
    assert _recipe_of(str(run), [], ["loss"])[1] == ["optim.lr=0.003", lines[-1]]
    assert _recipe_of(str(run), [], ["optim"])[1] == ["loss=focal", lines[-1]]
    assert _recipe_of(str(run), ["optim.lr"], [])[1] == ["loss=focal", lines[-1]]  # typed on this command: its own


def test_a_run_whose_file_names_a_place_is_refused(tmp_path):
    run = _run(tmp_path / "shared", ["loss=focal", "callbacks.model_checkpoint.dirpath=/etc/cron.d"], 0)
    with pytest.raises(ConfigError, match="overrides.yaml: callbacks.model_checkpoint.dirpath is refused"):
        _recipe_of(str(run), [], [])


def test_only_trained_runs_are_confirmed(tmp_path):
    run = _run(tmp_path / "p", [], 0)
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
    config["task"]["name"] = "predict"
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="a predict run"):
        _recipe_of(str(run), [], [])


def test_a_sweep_ends_with_the_commands_that_test_its_winner(tmp_path):
    sweep = tmp_path / "sweep"
    for i, (loss, lr, seed, value) in enumerate([("ce", "0.001", 0, 0.50), ("focal", "0.003", 0, 0.61),
                                                 ("focal", "0.001", 1, 0.55)]):
        _run(sweep / str(i), ["data=mask", "trainer.max_epochs=4", f"loss={loss}", f"optim.lr={lr}"], seed, value)
    (sweep / "3" / ".hydra").mkdir(parents=True)  # a job that failed: never the best
    df = sweep_table(sweep)
    lines = next_steps(df, sweep)
    assert lines[0].startswith("best job: 1 (") and "val/f1_best=0.6100" in lines[0]
    assert f"task=compare runs={sweep}" in lines[1]
    assert f"task=confirm runs=[{sweep / '1'}] task.without=[loss,optim.lr] task.seeds=5" in lines[2]
    assert next_steps(pd.DataFrame(df.assign(status="failed")), sweep) == []


def test_a_repeated_confirmation_reads_the_finished_jobs_of_the_earlier_one(tmp_path, monkeypatch):
    import mask_cls.tasks.confirm as confirm

    jobs = tmp_path / "earlier" / "jobs"
    for i, (overrides, value) in enumerate([(["task=train", "loss=focal"], 0.6), (["task=train"], 0.5),
                                            (["task=train", "loss=focal"], None)]):  # the third failed
        _run(jobs / str(i), overrides, 3 + (i == 2))
        if value is None:
            (jobs / str(i) / "metrics.json").unlink()
    found = confirm.finished(str(tmp_path / "earlier"))
    assert found == {("task=train", "loss=focal", "seed=3"): jobs / "0", ("task=train", "seed=3"): jobs / "1"}
    calls = []
    monkeypatch.setattr(confirm, "_run_job", lambda command, folder: calls.append(command) or True)
    new = tmp_path / "new" / "jobs"
    new.parent.mkdir()
    done = confirm._train([("train", ["loss=focal"]), ("train", [])], [3, 4], [], new, found)
    assert done == [jobs / "0", jobs / "1", new / "2", new / "3"]  # seed 3 read in place, seed 4 trained
    assert [c[2:-1] for c in calls] == [["task=train", "loss=focal", "seed=4"], ["task=train", "seed=4"]]
    with pytest.raises(ConfigError, match="not a task=confirm run"):
        confirm.finished(str(tmp_path / "new" / "jobs" / "0"))


@pytest.mark.slow
@pytest.mark.spawns
def test_confirm_through_a_hydra_launcher_then_again_reusing_its_jobs(tiny_root, tmp_path):
    """task.launcher=local: each recipe one -m sweep over the new seeds (submitit's local
    processes, the path of a SLURM cluster); task.reuse= of that run trains nothing again."""
    from tests.conftest import FAST, run_cli

    fast = [o for o in FAST if not o.startswith(("trainer.accelerator", "trainer.enable", "data.num_workers",
                                                 "data.persistent_workers"))]
    for name, extra in (("best", ["loss=focal"]), ("ref", [])):
        _run(tmp_path / name, [*fast, *extra], 0, root=str(tiny_root))
    typed = ["task=confirm", f"runs=[{tmp_path / 'best'},{tmp_path / 'ref'}]", "task.seeds=2", "task.launcher=local",
             "data.num_workers=0", "trainer.accelerator=cpu"]
    first = tmp_path / "first"
    r = run_cli(*typed, f"hydra.run.dir={first}")
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads((first / "compare.json").read_text())
    assert result["reference"] == "default" and {a["arm"] for a in result["arms"]} == {"default", "loss=focal"}
    assert sorted((r["arm"], r["seed"]) for r in result["runs"]) == [("default", 1), ("default", 2),
                                                                    ("loss=focal", 1), ("loss=focal", 2)]
    assert all(r["status"] == "ok" for r in result["runs"])
    assert {p.parent.name for p in map(Path, (r["path"] for r in result["runs"]))} == {"jobs_0", "jobs_1"}
    assert (first / "jobs_0" / "sweep_results.csv").is_file() and (first / "jobs_0" / ".submitit").is_dir()
    again = tmp_path / "again"
    r = run_cli(*typed, f"task.reuse={first}", f"hydra.run.dir={again}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert not list(again.glob("jobs*")) and "2 seed(s) finished earlier" in r.stdout
    assert json.loads((again / "compare.json").read_text())["arms"] == result["arms"]
