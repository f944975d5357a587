"""manifest.json in every run (code, versions, machine, data fingerprint), and task=compare
listing exactly the config keys that differ between runs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.conftest import FAST, ROOT, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


@pytest.fixture(scope="module")
def two_runs(tiny_root, tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    runs = []
    for name, extra in (("a", []), ("b", ["optim.lr=0.003", "data.age_threshold=58"])):
        out = base / name
        r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={out}", *FAST, *extra)
        assert r.returncode == 0, r.stderr[-3000:]
        runs.append(out)
    return runs


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout


def test_manifest_records_code_versions_machine_and_data(two_runs, tiny_root):
    m = json.loads((two_runs[0] / "manifest.json").read_text())
    assert m["command"].startswith("python ") and f"data.root={tiny_root}" in m["command"]
    assert m["code"]["commit"] == _git("rev-parse", "HEAD").strip()
    diff = _git("diff", "HEAD", "--", ".")
    assert m["code"]["dirty"] == bool(diff)
    assert m["code"]["diff_sha256"] == (hashlib.sha256(diff.encode()).hexdigest() if diff else None)
    assert m["versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert m["machine"]["cpus"] == os.cpu_count() and m["machine"]["gpu"] is None
    # the data fingerprint, recomputed here from the table the layout reads (person folders x images)
    from mask_cls.data.layouts.competition.tables import read_train

    table = read_train(tiny_root)
    rows = sorted(f"{Path(i).resolve().relative_to(tiny_root.resolve())}\t{p}\t{int(c)}"
                  for i, p, c in zip(table["image"], table["person"], table["label"]))
    assert m["data"]["images"] == len(table) and m["data"]["persons"] == table["person"].nunique()
    assert m["data"]["train_table_sha256"] == hashlib.sha256("\n".join(rows).encode()).hexdigest()
    assert m["data"]["bytes"] == sum(Path(i).stat().st_size for i in table["image"])
    # and every logger has it (the CSV logger's hparams)
    hparams = (two_runs[0] / "csv" / "hparams.yaml").read_text()
    assert m["code"]["commit"] in hparams and "manifest/data/train_table_sha256" in hparams


def test_compare_lists_exactly_the_changed_keys(two_runs, tmp_path):
    a, b = two_runs
    out = tmp_path / "cmp"
    r = run_cli("task=compare", f"runs=[{a},{b}]", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    table = pd.read_csv(out / "compare.csv", dtype=str)
    assert list(table.columns) == ["key", "a", "b"]
    scores = table.iloc[:4]
    assert list(scores.key) == ["val/f1_best", "val/f1", "report f1 (tta)", "commit"]
    best_a = json.loads((a / "metrics.json").read_text())["val/f1_best"]
    assert float(scores.iloc[0]["a"]) == pytest.approx(best_a)
    # the figure the run printed and its submission follows: the report's F1 (TTA, every validation image)
    assert float(scores.iloc[2]["b"]) == pytest.approx(json.loads((b / "report" / "scores.json").read_text())["f1"])
    changed = table.iloc[4:]
    assert sorted(changed.key) == ["data.age_threshold", "optim.lr"]
    assert changed.set_index("key").loc["optim.lr", "b"] == "0.003"
    assert "optim.lr" in r.stdout and "data.age_threshold" in r.stdout


def test_compare_reads_a_run_config_as_data(two_runs, tmp_path):
    """A tampered run's config.yaml (a YAML tag that would build an object) is one line, nothing run."""
    a, b = two_runs
    bad = tmp_path / "bad"
    shutil.copytree(b, bad)
    witness = tmp_path / "pwned"
    (bad / ".hydra" / "config.yaml").write_text(f"x: !!python/object/apply:os.system ['touch {witness}']\n")
    r = run_cli("task=compare", f"runs=[{a},{bad}]", f"hydra.run.dir={tmp_path / 'cmp'}")
    assert r.returncode != 0 and not witness.exists()
    assert "config.yaml: not a readable run file" in r.stderr.strip().splitlines()[-1]


def test_compare_survives_a_malformed_manifest(two_runs, tmp_path):
    """A run's manifest.json whose ``code`` is not a mapping: the commit is unknown, nothing crashes."""
    a, b = two_runs
    odd = tmp_path / "odd"
    shutil.copytree(b, odd)
    (odd / "manifest.json").write_text(json.dumps({"code": ["not", "a", "mapping"]}))
    out = tmp_path / "cmp"
    r = run_cli("task=compare", f"runs=[{a},{odd}]", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    table = pd.read_csv(out / "compare.csv", dtype=str).set_index("key")
    assert table.loc["commit", "odd"] == "(unknown: no commit in manifest.json)"
    assert table.loc["commit", "a"] == _git("rev-parse", "HEAD").strip()[:10] + ("+dirty" if _git("diff", "HEAD", "--", ".") else "")


def test_compare_names_sweep_jobs_by_what_they_changed(tmp_path, capsys):
    """Jobs 0 and 1 of a sweep are columns named by the overrides that set them apart."""
    import yaml
    from omegaconf import OmegaConf

    from mask_cls.tasks.compare import compare

    sweep = tmp_path / "sweep"
    for job, lr in (("0", "0.001"), ("1", "0.003")):
        (sweep / job / ".hydra").mkdir(parents=True)
        (sweep / job / ".hydra" / "config.yaml").write_text(yaml.safe_dump({"optim": {"lr": float(lr)}}))
        (sweep / job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"optim.lr={lr}", "data=mask"]))
        (sweep / job / "metrics.json").write_text(json.dumps({"val/f1_best": 0.5}))
    out = tmp_path / "out"
    out.mkdir()
    compare(OmegaConf.create({"runs": [str(sweep / "0"), str(sweep / "1")]}), out)
    table = pd.read_csv(out / "compare.csv", dtype=str)
    assert list(table.columns) == ["key", "0: optim.lr=0.001", "1: optim.lr=0.003"]
