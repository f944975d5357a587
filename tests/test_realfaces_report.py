"""The "Real faces" figures: a split by person, paired statistics, claims, and a block generated from runs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import eval_split  # noqa: E402
import realfaces_report as rep  # noqa: E402

from mask_cls.evaluation.difference import NO_SPREAD  # noqa: E402


def rows(arm: str, sel: list[float], conf: list[float], regime: str = "pretrained") -> list[dict]:
    return [{"regime": regime, "arm": arm, "seed": s, "f1": (a + b) / 2, "f1_sel": a, "f1_conf": b,
             "age_f1_conf": 0.5, "gender_f1_conf": 0.9, "seconds": 10.0, "commit": "abc", "split": "d1",
             "date": "2026-11-30", "command": f"python run.py seed={s}"} for s, (a, b) in enumerate(zip(sel, conf))]


def test_paired_difference_against_a_hand_computation():
    """diffs 0.01, 0.02, 0.03: mean 0.02, se 0.01/sqrt(3), t = 3.464 with 2 dof -> p = 0.0742
    (t tables), 95% interval 0.02 +- 4.303 * se."""
    d = rep.paired_of(pd.Series([0.51, 0.52, 0.53]), pd.Series([0.50, 0.50, 0.50]))
    se = 0.01 / np.sqrt(3)
    assert d.n == 3 and d.diff == pytest.approx(0.02)
    assert d.p == pytest.approx(0.0742, abs=5e-4)
    assert (d.lo, d.hi) == (pytest.approx(0.02 - 4.3027 * se, abs=1e-4), pytest.approx(0.02 + 4.3027 * se, abs=1e-4))
    # pairing is by seed: a seed one side lacks is left out, not matched to another seed
    d = rep.paired_of(pd.Series([0.6, 0.7], index=[0, 5]), pd.Series([0.5, 0.5], index=[0, 1]))
    assert d.n == 1 and d.diff == pytest.approx(0.1) and np.isnan(d.p)


@settings(max_examples=150, deadline=None)
@given(pairs=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=12))
def test_paired_difference_is_scipys_paired_t(pairs):
    """Against scipy on any scores: the mean difference, the 95% t interval and ttest_rel's
    two-sided p-value; equal differences (no spread) give no p-value and no claim, never p = 0."""
    from scipy import stats

    a, b = pd.Series([x for x, _ in pairs]), pd.Series([y for _, y in pairs])
    d = rep.paired_of(a, b)
    diffs = (a - b).to_numpy()
    assert d.n == len(pairs) and d.diff == pytest.approx(diffs.mean(), abs=1e-12)
    if np.std(diffs, ddof=1) <= NO_SPREAD:
        assert np.isnan(d.p) and rep.verdict(d, d).startswith("not shown")
        return
    ref = stats.ttest_rel(a, b)
    lo, hi = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    assert d.p == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)
    assert (d.lo, d.hi) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))


def test_equal_differences_are_no_test():
    d = rep.paired_of(pd.Series([0.6, 0.7, 0.8]), pd.Series([0.5, 0.6, 0.7]))
    assert d.n == 3 and d.diff == pytest.approx(0.1) and np.isnan(d.p)
    assert rep.verdict(d, d) == "not shown"


def test_a_gain_is_shown_only_when_picked_on_selection_and_confirmed():
    base = [0.50, 0.52, 0.48, 0.51, 0.49]
    r = pd.DataFrame(rows("default", base, base)
                     # picked on selection, confirmed: steady +0.03
                     + rows("good", [b + 0.02 for b in base], [b + 0.03 + 0.001 * i for i, b in enumerate(base)])
                     # confirmed gain, but it lost on the selection half: never picked, so not shown
                     + rows("lucky", [b - 0.01 for b in base], [b + 0.03 + 0.001 * i for i, b in enumerate(base)])
                     # picked, mean gain on confirmation, but noisy: p > 0.05
                     + rows("noisy", [b + 0.02 for b in base], [b + d for b, d in zip(base, [0.08, -0.05, 0.06, -0.04, 0.02])])
                     # rejected on selection and a confirmed loss
                     + rows("bad", [b - 0.02 for b in base], [b - 0.04 + 0.001 * i for i, b in enumerate(base)])
                     + rows("one_seed", [0.6], [0.6]))
    c = rep.comparisons(r, "pretrained").set_index("arm")
    assert c.loc["good", "verdict"] == "**gain shown**" and c.loc["good", "conf"].p < 0.05
    assert c.loc["lucky", "verdict"] == "not shown" and c.loc["lucky", "conf"].p < 0.05
    assert c.loc["noisy", "verdict"] == "not shown" and c.loc["noisy", "conf"].diff > 0
    assert c.loc["bad", "verdict"] == "**loss shown**"
    assert c.loc["one_seed", "verdict"].startswith("not shown")
    block = rep.render(r)
    assert block.startswith(rep.BEGIN) and block.rstrip().endswith(rep.END)
    good = next(line for line in block.splitlines() if line.startswith("| good |"))
    assert "+0.0320" in good and "gain shown" in good  # the confirmation half's mean, never the selection's


def test_one_change_is_compared_with_the_arm_it_changes():
    base = [0.50, 0.52, 0.48]
    r = pd.DataFrame(rows("default", base, base) + rows("seed_augment", base, [b - 0.1 for b in base])
                     + rows("seed_cutmix_only", base, [b - 0.1 for b in base]))
    c = rep.comparisons(r, "pretrained")
    cut = c[c.arm == "seed_cutmix_only"]
    assert list(cut.vs) == ["seed_augment", "default"]
    assert cut.iloc[0].conf.diff == pytest.approx(0.0) and cut.iloc[1].conf.diff == pytest.approx(-0.1)


@pytest.mark.slow
def test_benchmarks_md_block_is_what_the_committed_results_render():
    """The check CI runs: BENCHMARKS.md's Real faces tables come from bench/results/realfaces.csv."""
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "realfaces_report.py"), "--check", str(ROOT / "BENCHMARKS.md")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    r2 = subprocess.run([sys.executable, str(ROOT / "bench" / "realfaces_report.py"), "--block", "realfaces2", "--check",
                         str(ROOT / "BENCHMARKS.md")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r2.returncode == 0, r2.stderr  # round 2 (task.keep): its own block from bench/results/realfaces2.csv
    text = (ROOT / "BENCHMARKS.md").read_text()
    edited = text.replace("| default |", "| default  |", 1)
    assert edited != text and rep.replace_block(edited, rep.render(pd.read_csv(rep.RESULTS)), "x") != edited


def test_benchmarks_md_calibration_block_is_what_its_results_render():
    """BENCHMARKS.md's calibration table and paired figures come from bench/results/calibration.csv."""
    import calibration_report as cal

    text = (ROOT / "BENCHMARKS.md").read_text()
    block = cal.render(pd.read_csv(cal.RESULTS))
    assert rep.replace_block(text, block, "BENCHMARKS.md", cal.BEGIN, cal.END) == text
    assert "ECE: -0.1159" in block and "p = 0.036: **shown**" in block  # the hand-checked paired test


def test_eval_persons_found_from_the_upper_face(tmp_path):
    """Seven images per person share the upper face; a masked image joins its own normal photo,
    and two persons made from one photo become one group (never on both sides of the split)."""
    import cv2

    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (40, 32), dtype=np.uint8) for _ in range(5)]
    faces.append(faces[4].copy())  # person 5 is person 4's photo used again
    names, ans, truth = [], [], []
    for person, top in enumerate(faces):
        klass = [0, 1, 3, 4, 5, 5][person]  # gender x age, shared by the person's images
        for k, mask in enumerate([0, 0, 0, 0, 0, 1, 2]):
            im = np.vstack([top, rng.integers(0, 256, (60, 32), dtype=np.uint8)])  # the lower face differs
            name = f"{person}_{k}.png"
            cv2.imwrite(str(tmp_path / name), im)
            names.append(name)
            ans.append(6 * mask + klass)
            truth.append(min(person, 4))
    key = pd.DataFrame({"ImageID": names, "ans": ans}).sample(frac=1, random_state=0)
    group = eval_split.eval_persons(tmp_path, key)
    truth = pd.Series(truth, index=names).loc[key.ImageID]
    assert pd.crosstab(group.to_numpy(), truth.to_numpy()).gt(0).sum(axis=1).eq(1).all()  # a group is one person
    assert group.nunique() == 5
    half = eval_split.halves(group, key.set_index("ImageID")["ans"] % 6)
    assert (pd.DataFrame({"g": group.to_numpy(), "h": half.to_numpy()}).groupby("g").h.nunique() == 1).all()


def test_a_group_whose_eval_image_is_a_training_photo_is_in_neither_half(tiny_copy):
    """The split drops (from both halves) an eval person whose image shows a training photo."""
    info = pd.read_csv(tiny_copy / "eval" / "info.csv")
    key = info.assign(ans=[(6 * (i % 3) + i % 6) for i in range(len(info))])
    key.to_csv(tiny_copy / "key.csv", index=False)
    pd.DataFrame({"ImageID": key.ImageID, "person": [i // 2 for i in range(len(key))]}).to_csv(
        tiny_copy / "eval_persons.csv", index=False)
    clean = eval_split.make(tiny_copy, tiny_copy / "key.csv")
    assert set(clean.half) <= set(eval_split.HALVES)
    train_image = sorted((tiny_copy / "train" / "images").glob("*/normal.*"))[0]
    (tiny_copy / "eval" / "images" / key.ImageID[0]).write_bytes(train_image.read_bytes() + b"\0")
    split = eval_split.make(tiny_copy, tiny_copy / "key.csv")
    assert list(split.half[split.person == 0].unique()) == [eval_split.DROPPED]
    assert (split.half[split.person != 0] == clean.half[clean.person != 0]).all()  # the others keep their half


def test_the_shown_face_crop_gain_quoted_in_readme_and_real_best_is_the_results_files():
    """A figure is a claim: the face-crop gain the README and experiment=real_best's header quote is
    what bench/results/realfaces2.csv renders (edit the rows and the quotes must follow)."""
    results = pd.read_csv(ROOT / "bench" / "results" / "realfaces2.csv")
    c = rep.comparisons(results, "canvas").set_index(["arm", "vs"]).loc[("face_crop", "default")]
    d = c["conf"]
    assert c["verdict"] == "**gain shown**" and c["seeds"] == "0 1 2 3 4"
    readme = f"+{d.diff:.3f} [+{d.lo:.3f}, +{d.hi:.3f}], p = {d.p:.3f}"
    header = f"+{d.diff:.4f} [+{d.lo:.4f}, +{d.hi:.4f}], p = {d.p:.3f}"
    assert readme in (ROOT / "README.md").read_text(), readme
    assert header in (ROOT / "conf" / "experiment" / "real_best.yaml").read_text(), header
    assert f"confirmation F1 {c['f1_conf']:.3f}" in (ROOT / "README.md").read_text()
