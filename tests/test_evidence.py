"""Is a change real or seed noise? The statistics against scipy, and ``task=compare`` reading
sweeps: arms by identity, paired and unpaired tests, Holm, failed jobs listed, files read as data.
In-process: run folders are written here as runs write them."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from scipy import stats

from mask_cls.errors import ConfigError
from mask_cls.evaluation.difference import holm, paired, welch
from mask_cls.tasks.compare import compare

SCORES = st.lists(st.floats(0.0, 1.0, allow_nan=False, width=32), min_size=2, max_size=9)


# --- the statistics --------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.data())
def test_paired_is_scipys_ttest_rel_with_its_interval(data):
    a = data.draw(SCORES)
    b = data.draw(st.lists(st.floats(0.0, 1.0, allow_nan=False, width=32), min_size=len(a), max_size=len(a)))
    seeds = data.draw(st.permutations(range(len(a))))  # any seed labels, any order
    d = paired(dict(zip(seeds, a)), {s: v for s, v in reversed(list(zip(seeds, b)))})
    diffs = np.asarray(a, float) - np.asarray(b, float)
    assert d.n == len(a) and d.diff == pytest.approx(diffs.mean(), abs=1e-12)
    if np.std(diffs) < 1e-9:
        return  # no spread: no test (checked below)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert d.test == "paired" and d.p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert (d.lo, d.hi) == (pytest.approx(ci.low, abs=1e-9), pytest.approx(ci.high, abs=1e-9))


@settings(max_examples=60, deadline=None)
@given(SCORES, SCORES)
def test_welch_is_scipys_unequal_variance_t_test(a, b):
    d = welch(a, b)
    if np.var(a) + np.var(b) < 1e-12:
        return
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert d.test == "welch" and d.n == min(len(a), len(b))
    assert d.diff == pytest.approx(np.mean(a) - np.mean(b), abs=1e-12)
    assert d.p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert (d.lo, d.hi) == (pytest.approx(ci.low, abs=1e-9), pytest.approx(ci.high, abs=1e-9))


def test_paired_uses_only_the_seeds_both_have_and_never_tests_without_spread():
    d = paired({0: 0.6, 1: 0.7, 5: 0.9}, {0: 0.5, 1: 0.5, 2: 0.1})
    assert d.n == 2 and d.diff == pytest.approx(0.15)  # seeds 0 and 1; 5 and 2 have no partner
    same = paired({0: 0.6, 1: 0.7, 2: 0.8}, {0: 0.5, 1: 0.6, 2: 0.7})  # equal differences
    assert same.n == 3 and same.diff == pytest.approx(0.1) and math.isnan(same.p) and not same.tested
    one = paired({0: 0.6}, {0: 0.5})
    assert one.n == 1 and math.isnan(one.p) and math.isnan(one.lo)
    assert math.isnan(welch([0.5], [0.4, 0.6]).p)


def test_holm_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone: 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.2, math.nan, 0.6])  # NaN is not a test: m = 2
    assert out[0] == pytest.approx(0.4) and math.isnan(out[1]) and out[2] == pytest.approx(0.6)
    assert holm([0.9, 0.8]) == [1.0, 1.0]  # capped


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=8))
def test_holm_is_the_step_down_definition(ps):
    """Independent definition: adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j))."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    expected = [0.0] * m
    for rank, i in enumerate(order):
        expected[i] = max(min(1.0, (m - j) * ps[order[j]]) for j in range(rank + 1))
    assert holm(ps) == pytest.approx(expected)


# --- task=compare on sweeps ------------------------------------------------------------------

def _job(folder, overrides, seed, value, *, metric="val/f1_best", task="train", split_seed=42):
    (folder / ".hydra").mkdir(parents=True)
    config = {"seed": seed, "task": {"name": task, "optimized_metric": metric}, "data": {"split_seed": split_seed}}
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([*overrides, f"seed={seed}"]))
    if value is not None:
        name = "cv.json" if metric == "cv/f1" else "metrics.json"
        (folder / name).write_text(json.dumps({metric: value}))
    return folder


def _sweep(root, arms: dict[str, list[tuple[int, float | None]]], start=0):
    """A sweep folder: one numbered job per (arm, seed), in order."""
    i = start
    for override, runs in arms.items():
        for seed, value in runs:
            _job(root / str(i), [o for o in override.split() if o], seed, value)
            i += 1
    return root


def _compare(tmp_path, runs, **task):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    cfg = OmegaConf.create({"runs": runs, "task": {"metric": None, "reference": None, "alpha": 0.05, **task}})
    compare(cfg, out)
    return {r["arm"]: r for r in json.loads((out / "compare.json").read_text())["arms"]}, out


def test_a_sweep_of_two_values_and_three_seeds_is_two_arms_paired_by_seed(tmp_path):
    a = [0.50, 0.47, 0.55]
    b = [0.56, 0.50, 0.62]
    # the jobs in shuffled order, as an Optuna or a cluster sweep may number them
    jobs = [("data.age_threshold=60", s, a[s]) for s in (2, 0, 1)] + [("data.age_threshold=58", s, b[s]) for s in (1, 2, 0)]
    for i, (o, s, v) in enumerate(jobs):
        _job(tmp_path / "sweep" / str(i), [o, "trainer.max_epochs=1", f"hydra.run.dir=/x/{i}", f"data.num_workers={i}"],
             s, v)
    arms, out = _compare(tmp_path, str(tmp_path / "sweep"))
    assert list(arms) == ["data.age_threshold=60", "data.age_threshold=58"]  # first in order is the reference
    ref = stats.ttest_rel(b, a)
    row = arms["data.age_threshold=58"]
    assert row["n"] == 3 and row["test"] == "paired" and row["seeds"] == "1 2 0"
    assert row["diff"] == pytest.approx(np.mean(b) - np.mean(a)) and row["p"] == pytest.approx(ref.pvalue)
    assert row["verdict"] == ("shown" if ref.pvalue < 0.05 else "not shown")
    assert arms["data.age_threshold=60"]["verdict"] == "reference"
    assert arms["data.age_threshold=60"]["mean"] == pytest.approx(np.mean(a))
    assert arms["data.age_threshold=60"]["sd"] == pytest.approx(np.std(a, ddof=1))
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "arms.csv").read_text().splitlines()[0].startswith("arm,verdict,n,failed,seeds,mean")


def test_holm_across_arms_and_the_reference_typed(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.6, 4)
    shifts = {"loss=focal": 0.05, "loss=smoothing": 0.01, "loss=ce": 0.0}
    spec = {o: [(s, float(base[s] + d + rng.normal(0, 0.01))) for s in range(4)] for o, d in shifts.items()}
    _sweep(tmp_path / "sweep", spec)
    arms, _ = _compare(tmp_path, [str(tmp_path / "sweep")], reference="loss=ce")
    assert arms["loss=ce"]["verdict"] == "reference"
    raw = [arms[o]["p"] for o in ("loss=focal", "loss=smoothing")]
    assert [arms[o]["p_holm"] for o in ("loss=focal", "loss=smoothing")] == pytest.approx(holm(raw))
    for o in ("loss=focal", "loss=smoothing"):
        assert arms[o]["verdict"] == ("shown" if arms[o]["p_holm"] < 0.05 else "not shown")
    assert arms["loss=focal"]["verdict"] == "shown"
    with pytest.raises(ConfigError, match="matches 0 arms"):
        _compare(tmp_path, [str(tmp_path / "sweep")], reference="loss=arcface")


def test_unmatched_seeds_use_welch_and_one_seed_is_not_tested(tmp_path):
    _sweep(tmp_path / "s", {"optim.lr=0.001": [(0, 0.50), (1, 0.52), (2, 0.49)],
                            "optim.lr=0.003": [(3, 0.55), (4, 0.57), (5, 0.56)],
                            "optim.lr=0.01": [(0, 0.9)]})
    arms, _ = _compare(tmp_path, str(tmp_path / "s"), reference="optim.lr=0.001")
    unpaired = arms["optim.lr=0.003"]
    assert unpaired["test"] == "welch"
    assert unpaired["p"] == pytest.approx(stats.ttest_ind([0.55, 0.57, 0.56], [0.50, 0.52, 0.49], equal_var=False).pvalue)
    assert arms["optim.lr=0.01"]["verdict"] == "one seed" and arms["optim.lr=0.01"]["p"] is None


def test_a_failed_job_and_a_job_without_score_are_listed_not_dropped(tmp_path):
    sweep = _sweep(tmp_path / "s", {"loss=ce": [(0, 0.5), (1, 0.6)], "loss=focal": [(0, 0.55), (1, None)]})
    (sweep / "3" / "failed.txt").write_text("ValueError: planted\n")
    (sweep / "4").mkdir()  # killed before Hydra wrote anything
    arms, out = _compare(tmp_path, str(sweep))
    assert arms["loss=focal"]["n"] == 1 and arms["loss=focal"]["failed"] == 1
    assert arms["loss=focal"]["verdict"] == "one seed"
    runs = {os.path.basename(r["path"]): r for r in json.loads((out / "compare.json").read_text())["runs"]}
    assert runs["3"]["status"] == "failed: ValueError: planted" and runs["3"]["value"] is None
    assert runs["4"]["status"].startswith("failed") and runs["4"]["arm"] is None
    assert len(runs) == 5



def test_a_failed_jobs_message_is_one_printable_line_and_a_huge_one_is_not_read(tmp_path):
    sweep = _sweep(tmp_path / "s", {"loss=ce": [(0, 0.5), (1, None)], "loss=focal": [(0, 0.55), (1, None)]})
    (sweep / "1" / "failed.txt").write_text("boom \x1b[31mred\x1b[0m\nsecond line\n")
    (sweep / "3" / "failed.txt").write_text("x" * 100_000)
    _, out = _compare(tmp_path, str(sweep))
    runs = {os.path.basename(r["path"]): r for r in json.loads((out / "compare.json").read_text())["runs"]}
    assert runs["1"]["status"] == "failed: boom \\x1b[31mred\\x1b[0m"
    assert runs["3"]["status"].startswith("failed (") and "100000 bytes" in runs["3"]["status"]


def test_runs_that_optimise_different_scores_are_compared_on_the_score_named(tmp_path):
    """A cv run beside a train run: the key table, no arms (cv/f1 against val/f1_best is no
    comparison) until task.metric names one score; a run without it has no score."""
    _job(tmp_path / "t", [], 0, 0.5)
    _job(tmp_path / "c", ["task=cv"], 0, 0.6, metric="cv/f1", task="cv")
    out = tmp_path / "out"
    out.mkdir()
    compare(OmegaConf.create({"runs": [str(tmp_path / "t"), str(tmp_path / "c")], "task": {}}), out)
    assert (out / "compare.csv").is_file() and not (out / "arms.csv").exists()
    arms, _ = _compare(tmp_path, [str(tmp_path / "t"), str(tmp_path / "c")], metric="cv/f1")
    assert arms["task=cv"]["mean"] == 0.6 and arms["default"]["n"] == 0 and arms["default"]["failed"] == 1


@pytest.mark.parametrize("alpha, ok", [(0.05, True), (0.999, True), (0.0, False), (1.0, False), (-0.1, False)])
def test_alpha_is_a_level_between_0_and_1(tmp_path, alpha, ok):
    _sweep(tmp_path / "s", {"loss=ce": [(0, 0.5), (1, 0.6)], "loss=focal": [(0, 0.55), (1, 0.58)]})
    if ok:
        _compare(tmp_path, str(tmp_path / "s"), alpha=alpha)
    else:
        with pytest.raises(ConfigError, match="task.alpha"):
            _compare(tmp_path, str(tmp_path / "s"), alpha=alpha)


def test_a_sweep_folder_is_read_as_data(tmp_path, monkeypatch):
    """An interpolation in a job's files stays text; a job that is a link is not followed."""
    monkeypatch.setenv("SECRET_TOKEN", "leaked")
    sweep = _sweep(tmp_path / "s", {"optim.lr=${oc.env:SECRET_TOKEN}": [(0, 0.5), (1, 0.6)],
                                    "loss=focal": [(0, 0.55), (1, 0.58)]})
    outside = _job(tmp_path / "elsewhere", ["loss=ce"], 0, 0.99)
    (sweep / "9").symlink_to(outside, target_is_directory=True)
    arms, out = _compare(tmp_path, str(sweep))
    assert "optim.lr=${oc.env:SECRET_TOKEN}" in arms
    text = "".join(p.read_text() for p in out.iterdir() if p.suffix in (".csv", ".json"))
    assert "leaked" not in text and "elsewhere" not in text and "loss=ce" not in text


def test_a_folder_that_is_neither_a_run_nor_a_sweep_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="neither a run"):
        _compare(tmp_path, [str(tmp_path / "empty"), str(tmp_path / "empty")])


def test_two_arms_each_below_alpha_alone_are_not_shown_after_holm(tmp_path):
    """Paired differences built to give p = 0.03 and 0.04 alone: Holm makes both 0.06."""
    base = [0.50, 0.52, 0.48]
    spec = {"loss=ce": list(enumerate(base))}
    for override, p in (("loss=focal", 0.03), ("loss=smoothing", 0.04)):
        t = stats.t.isf(p / 2, 2)
        c = 0.02
        e = c * math.sqrt(3) / t  # differences c - e, c, c + e: mean c, sd e
        spec[override] = [(s, base[s] + c + k * e) for s, k in zip(range(3), (-1, 0, 1))]
    _sweep(tmp_path / "s", spec)
    arms, _ = _compare(tmp_path, str(tmp_path / "s"))
    assert arms["loss=focal"]["p"] == pytest.approx(0.03) and arms["loss=smoothing"]["p"] == pytest.approx(0.04)
    assert arms["loss=focal"]["p_holm"] == pytest.approx(0.06) and arms["loss=smoothing"]["p_holm"] == pytest.approx(0.06)
    assert arms["loss=focal"]["verdict"] == arms["loss=smoothing"]["verdict"] == "not shown"
    arms, _ = _compare(tmp_path, str(tmp_path / "s"), alpha=0.07)
    assert arms["loss=focal"]["verdict"] == "shown"


def test_a_seed_run_twice_is_one_pair_at_the_mean_of_its_runs(tmp_path):
    _sweep(tmp_path / "s", {"loss=ce": [(0, 0.50), (1, 0.60), (2, 0.55)],
                            "loss=focal": [(0, 0.52), (0, 0.58), (1, 0.61), (2, 0.57)]})
    arms, _ = _compare(tmp_path, str(tmp_path / "s"))
    row = arms["loss=focal"]
    assert row["n"] == 3 and row["seeds"] == "0 1 2"
    assert row["diff"] == pytest.approx(np.mean([0.55 - 0.50, 0.61 - 0.60, 0.57 - 0.55]))


@pytest.mark.slow
def test_the_arms_table_goes_to_the_sweeps_mlflow_and_wandb_group(tmp_path):
    """logger=mlflow / logger=wandb on task=compare: a run named compare in the group of the sweep
    it reads, with the table, the figure and each arm's numbers; without them, a line says how."""
    import mlflow

    from tests.conftest import run_cli

    sweep = _sweep(tmp_path / "age_sweep", {"data.age_threshold=60": [(0, 0.50), (1, 0.47), (2, 0.55)],
                                            "data.age_threshold=58": [(0, 0.56), (1, 0.50), (2, 0.62)]})
    config = yaml.safe_load((sweep / "0" / ".hydra" / "config.yaml").read_text()) | {"logger": {"wandb": {}}}
    (sweep / "0" / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    r = run_cli("task=compare", f"runs={sweep}", f"hydra.run.dir={tmp_path / 'plain'}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "the runs logged to wandb: add logger=wandb to this command to put the table in their group age_sweep" \
        in r.stdout
    out = tmp_path / "ml"
    r = run_cli("task=compare", f"runs={sweep}", "logger=mlflow", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-2000:]
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    (run,) = [x for e in client.search_experiments() for x in client.search_runs([e.experiment_id])]
    assert (run.info.run_name, run.data.tags["group"], run.data.tags["job_type"]) == ("compare", "age_sweep", "compare")
    arms = {a["arm"]: a for a in json.loads((out / "compare.json").read_text())["arms"]}
    assert run.data.metrics["compare/data.age_threshold_58/diff"] == pytest.approx(arms["data.age_threshold=58"]["diff"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"arms.csv", "compare.json", "compare.png"}
    out = tmp_path / "wb"
    r = run_cli("task=compare", f"runs={sweep}", "logger=wandb", f"hydra.run.dir={out}",
                env={"WANDB_MODE": "offline", "WANDB_SILENT": "true"})
    assert r.returncode == 0, r.stderr[-2000:]
    records = next(out.rglob("run-*.wandb")).read_bytes()
    assert b"age_sweep" in records and b"compare/arms" in records and b"compare/figure" in records
