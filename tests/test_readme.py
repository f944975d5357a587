"""Every ``python run.py ...`` command of README.md, run as written from a fresh working
directory, with only the size-shrinking overrides of ``SHRINK`` appended. Each command is a
process of its own, forked from a process that has imported torch, Lightning and timm once
(``tests/forked.py``); ``MASK_CLS_TEST_SUBPROCESS=1`` starts each one cold instead.

``<time>``, ``A`` and ``B`` in a run path stand for the latest run of that task made by an
earlier command of the README. A command the test cannot run carries ``(not run by the
tests: <reason>)`` in its README comment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT
from tests.forked import run_forked

# the only overrides added to a README command: smaller data, model, images and epochs
SHRINK = [
    "synth.train_persons=24", "synth.eval_persons=3", "synth.image_size=[64,48]",
    "model.backbone=mobilenetv3_small_050", "data.image_size=[64,48]", "data.batch_size=16",
    "data.num_workers=0", "data.n_folds=3", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
    "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
]
assert not any(s.startswith(("hydra.", "paths.", "+hydra", "hparams_search")) or "storage" in s for s in SHRINK)
#: commands whose model carries weights for one network (the backbone is not swapped for them)
PRETRAINED = {"experiment=real_best", "model=lite0_pretrained"}
SKIP_MARK = re.compile(r"\(not run by the tests: ([^)]*)\)")


#: a README section whose commands need no earlier command's runs: its own test, beside the long one
SELF_CONTAINED = "### Is my change real?"


def readme_commands(section: str | None = None) -> list[tuple[str, str | None]]:
    """(command, reason it is not run) for every ``python run.py`` line of README code blocks;
    ``section``: only those under that heading (a prefix), else all but ``SELF_CONTAINED``'s."""
    out, block, heading = [], False, ""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("#") and not block:
            heading = line
        if line.startswith("```"):
            block = not block
            continue
        inside = heading.startswith(SELF_CONTAINED)
        if block and line.startswith("python run.py") and (inside if section else not inside):
            cmd, _, comment = line.partition("#")
            skip = SKIP_MARK.search(comment)
            out.append((cmd.strip(), skip.group(1) if skip else None))
    return out


def latest(cwd: Path, task: str, kind: str = "runs") -> str:
    runs = sorted((cwd / "outputs" / task / kind).iterdir())
    assert runs, f"no earlier {task} run for the README command"
    return str(runs[-1].relative_to(cwd))


def fill(cmd: str, cwd: Path) -> list[str]:
    """The command's arguments with run placeholders replaced by the latest matching run."""
    def run_of(m: re.Match) -> str:
        return latest(cwd, m.group(1))

    cmd = re.sub(r"outputs/(\w+)/runs/<time>", run_of, cmd)
    if "runs/A" in cmd:
        cmd = cmd.replace("outputs/cv/runs/A", latest(cwd, "cv")).replace("outputs/train/runs/B", latest(cwd, "train"))
    return shlex.split(cmd)[2:]  # after "python run.py"


def test_readme_has_commands_and_skips_say_why():
    cmds = readme_commands()
    assert len(cmds) >= 15
    for cmd, reason in cmds:
        assert reason is None or len(reason) > 5, cmd


def run_as_typed(commands: list[tuple[str, str | None]], cwd: Path) -> list[str]:
    """Each command in order, with only ``SHRINK``'s overrides the user did not type added."""
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    ran = []
    for cmd, reason in commands:
        if reason:
            continue
        args = fill(cmd, cwd)
        typed = {a.split("=", 1)[0] for a in args}
        extra = [s for s in SHRINK if s.split("=", 1)[0] not in typed]  # what the user typed wins
        if any(a in PRETRAINED for a in args):  # its weights fit its own network: only sizes shrink
            extra = [s for s in extra if not s.startswith("model.backbone=")]
        r = run_forked([*args, *extra], cwd, env)
        assert r.returncode == 0, f"{cmd}\n{r.stderr[-3000:]}"
        ran.append(cmd)
    return ran


@pytest.mark.slow
def test_every_readme_command_as_typed(tmp_path):
    """In README order, so that later commands find the runs of earlier ones."""
    ran = run_as_typed(readme_commands(), tmp_path)
    assert len(ran) >= 12
    # what the commands were for, checked on their outputs
    multiruns = tmp_path / "outputs" / "train" / "multiruns"
    sweeps = sorted(p for p in multiruns.iterdir() if p.is_dir())
    assert (multiruns / "optuna.db").is_file()  # the default study's database sits beside the dated sweeps
    tables = [s for s in sweeps if (s / "sweep_results.csv").is_file()]
    assert len(tables) == len(sweeps) == 3, sweeps  # the -m sweep and both Optuna sweeps end with a table

    grid = pd.read_csv(tables[0] / "sweep_results.csv")
    assert len(grid) == 4 and set(grid["status"]) == {"ok"}
    assert list(grid["value"]) == sorted(grid["value"], reverse=True)
    assert {"loss=ce head=linear", "loss=focal head=arcface"} <= set(grid["overrides"])
    pseudo = tmp_path / latest(tmp_path, "pseudo")
    assert (pseudo / "pseudo.json").is_file()
    distill = json.loads((tmp_path / latest(tmp_path, "distill") / "teacher.json").read_text())
    assert distill["honest_validation"] and len(distill["models"]) == 1  # fold 0's model of the cv run alone


@pytest.mark.slow
def test_readme_is_my_change_real_commands_as_typed(tmp_path):
    """"Is my change real?": the loss sweep is two arms of three seeds, paired; confirm trained
    both recipes on three seeds none of the sweep used, job 3's recipe against job 0's."""
    assert len(run_as_typed(readme_commands(SELF_CONTAINED), tmp_path)) == 3
    cwd = tmp_path
    arms = json.loads((cwd / latest(cwd, "compare") / "compare.json").read_text())
    assert len(arms["runs"]) == 6 and all(r["path"].startswith("outputs/loss_sweep/") for r in arms["runs"])
    by = {a["arm"]: a for a in arms["arms"]}
    assert set(by) == {"loss=ce", "loss=focal"} and by["loss=ce"]["verdict"] == "reference"
    assert by["loss=focal"]["n"] == 3 and by["loss=focal"]["test"] in ("paired", "")
    confirm = cwd / latest(cwd, "confirm")
    result = json.loads((confirm / "compare.json").read_text())
    assert result["reference"] == "loss=ce" and len(result["runs"]) == 6
    assert sorted({r["seed"] for r in result["runs"]}) == [3, 4, 5]  # the sweep used 0, 1, 2
    assert all(r["status"] == "ok" for r in result["runs"]) and (confirm / "compare.png").is_file()
    job = (confirm / "jobs" / "0" / ".hydra" / "overrides.yaml").read_text()
    assert "loss=focal" in job and "seed=3" in job and "hydra" not in job


@pytest.mark.slow
@pytest.mark.parametrize("cwd_kind", ["elsewhere"])
def test_predict_and_resume_from_another_directory_without_data_overrides(tmp_path, cwd_kind):
    """A run remembers its config: predict and resume from another folder need only the run."""
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    home = tmp_path / "project"
    home.mkdir()
    data = ["data.root=data/tiny", *SHRINK]
    r = run_forked([*data, "trainer.max_epochs=2", "hydra.run.dir=outputs/first"], home, env)
    assert r.returncode == 0, r.stderr[-3000:]
    run = home / "outputs" / "first"
    elsewhere = tmp_path / cwd_kind
    elsewhere.mkdir()
    r = run_forked(["task=predict", f"run_dir={run}", "hydra.run.dir=p"], elsewhere, env)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (elsewhere / "p" / "submission.csv").read_text() == (run / "submission.csv").read_text()
    r = run_forked([f"resume={run}", "trainer.max_epochs=3", "hydra.run.dir=r"], elsewhere, env)
    assert r.returncode == 0, r.stderr[-3000:]

    second = json.loads((elsewhere / "r" / "metrics.json").read_text())
    logged = pd.concat([pd.read_csv(d / "csv" / "metrics.csv")["val/f1"].dropna() for d in (run, elsewhere / "r")])
    assert second["epochs"] == 3 and len(logged) == 3
    assert second["val/f1_best"] == pytest.approx(logged.max(), abs=1e-6)  # kept across the resume
    best = Path(second["best_checkpoint"])
    assert best.is_file() and best.parent == (elsewhere / "r" / "checkpoints").resolve()
    # any folder of images: predictions.csv, the same classes as the submission for the same images

    images = home / "data" / "tiny" / "eval" / "images"
    r = run_forked(["task=predict", f"run_dir={run}", f"images={images}", "hydra.run.dir=f"], elsewhere, env)
    assert r.returncode == 0, r.stderr[-3000:]
    pred = pd.read_csv(elsewhere / "f" / "predictions.csv")
    sub = pd.read_csv(run / "submission.csv", dtype={"ImageID": str})
    assert len(pred) == len(sub) and {"path", "label", "mask", "gender", "age", "p17"} <= set(pred.columns)
    by_name = dict(zip(pred["path"].map(lambda p: Path(p).name), pred["label"]))
    assert [by_name[i] for i in sub["ImageID"]] == list(sub["ans"])
    assert np.allclose(pred[[f"p{c}" for c in range(18)]].sum(1), 1, atol=1e-4)
    # the data root no longer there: one clear line naming it
    (home / "data" / "tiny").rename(home / "data" / "moved")
    r = run_forked(["task=predict", f"run_dir={run}", "hydra.run.dir=p2"], elsewhere, env)
    assert r.returncode == 1 and "no longer exists" in r.stderr
