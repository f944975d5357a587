"""wandb as its users expect, read back from the offline run folders."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


def _records(run_dir) -> bytes:
    return next(run_dir.glob("run-*.wandb")).read_bytes()


def test_cv_gives_one_wandb_run_per_fold_and_a_summary_run(tiny_root, tmp_path):
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    out = tmp_path / "cvrun"
    r = run_cli("task=cv", "data=mask", f"data.root={tiny_root}", *FAST, "logger=wandb", f"hydra.run.dir={out}",
                env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = sorted(out.rglob("offline-run-*"))
    metas = {}
    for run in runs:
        meta = json.loads(next(run.glob("files/wandb-metadata.json")).read_text()) \
            if list(run.glob("files/wandb-metadata.json")) else {}
        metas[run] = (meta, _records(run))
    assert len(runs) == 4  # fold_0, fold_1, fold_2 and the cv summary
    names = [rec for _, rec in metas.values()]
    for k in range(3):
        assert sum(f"fold_{k}".encode() in rec for rec in names) >= 1
    summary = [rec for rec in names if b"cv/f1_mean" in rec]  # (every run's config names cv/f1)
    assert len(summary) == 1 and b"cvrun" in summary[0] and b"oof" in summary[0]
    for rec in names:
        assert b"cvrun" in rec  # every run in the cv run's group
    for k in range(3):  # each fold folder is one train run
        fold = out / f"fold_{k}"
        assert (fold / "report" / "scores.json").is_file() and (fold / ".hydra" / "config.yaml").is_file()
        assert (fold / "submission.csv").read_text().count("\n") == (tiny_root / "eval" / "info.csv").read_text().count("\n")
    keys = {p.name for run in runs for p in (run / "files" / "media" / "images").rglob("*.png")}
    assert keys and not any(" " in k or "(" in k for k in keys)
