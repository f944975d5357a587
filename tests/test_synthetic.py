import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mask_cls import labels as L
from mask_cls.data.synthetic import SynthConfig, generate
from mask_cls.data.synthetic_faces import render, sample_person
from tests.conftest import ROOT


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_competition_layout(tiny_root):
    df = pd.read_csv(tiny_root / "train" / "train.csv", dtype=str)
    assert list(df.columns) == ["id", "gender", "race", "age", "path"]
    assert len(df) == 30
    for r in df.itertuples():
        assert r.path == f"{r.id}_{r.gender}_{r.race}_{r.age}"
        files = {p.stem for p in (tiny_root / "train" / "images" / r.path).iterdir()
                 if not p.name.startswith(".")}
        assert set(L.MASK_FILES) <= files
    info = pd.read_csv(tiny_root / "eval" / "info.csv")
    answers = pd.read_csv(tiny_root / "eval_answers.csv")
    assert list(info.columns) == ["ImageID", "ans"] and len(info) == 4 * 7
    assert (info.ImageID == answers.ImageID).all() and answers.ans.between(0, 17).all()
    assert all((tiny_root / "eval" / "images" / n).is_file() for n in info.ImageID)
    assert not (tiny_root / "eval" / "eval_answers.csv").exists()  # key kept outside eval/


def test_junk_mixed_extensions_and_repeated_id(tiny_root):
    df = pd.read_csv(tiny_root / "train" / "train.csv", dtype=str)
    assert df.id.duplicated().sum() == 1 and not df.path.duplicated().any()
    exts = {p.suffix for p in (tiny_root / "train" / "images").rglob("*") if p.is_file()}
    assert {".jpg", ".png"} <= exts or {".jpg", ".jpeg"} <= exts
    assert (tiny_root / "train" / "images" / ".DS_Store").exists()
    assert list((tiny_root / "train" / "images").rglob(".ipynb_checkpoints"))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    cfg = SynthConfig(train_persons=12, eval_persons=2, image_size=(48, 36), seed=11, workers=1)
    generate(tmp_path / "a", cfg, progress=False)
    generate(tmp_path / "b", cfg, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    cfg.seed = 12
    generate(tmp_path / "c", cfg, progress=False)
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_refuses_to_overwrite(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileExistsError):
        generate(tmp_path / "x", SynthConfig(train_persons=2, eval_persons=0), progress=False)


def test_real_set_proportions():
    rng = np.random.default_rng(0)
    people = [sample_person(rng, 0.5) for _ in range(6000)]
    ages = np.array([p.age for p in people])
    assert ages.min() >= 18 and ages.max() == 60
    assert abs((ages == 60).mean() - 0.071) < 0.012
    assert abs(np.mean([p.gender for p in people]) - 0.613) < 0.02
    assert abs((ages < 30).mean() - 0.474) < 0.03


def test_age_cues_are_continuous_so_57_to_60_are_hard():
    """Greyness rises with age but 57..60 overlap: no step at the >=60 boundary."""
    rng = np.random.default_rng(2)
    by_age: dict[int, list[float]] = {}
    while min((len(by_age.get(a, [])) for a in (25, 45, 58, 60)), default=0) < 150:
        p = sample_person(rng, 0.5)
        if p.age in (25, 45, 58, 60):
            by_age.setdefault(p.age, []).append(float(p.hair_colour.mean()))
    m = {a: np.mean(v) for a, v in by_age.items()}
    assert m[25] < m[45] < m[58]
    # 58 vs 60 differ by far less than one spread: the classes overlap
    assert abs(m[60] - m[58]) < 0.5 * np.std(by_age[60])


def test_mask_states_differ_where_the_mask_sits():
    """Same person and same rng draws: the mask changes the lower face, 'wear' covers the nose."""
    h, w = 128, 96
    person = sample_person(np.random.default_rng(5), 0.0)
    imgs = {s: render(person, s, np.random.default_rng(9), h, w, 0.0).astype(float) for s in range(3)}
    nose = (slice(int(h * 0.45), int(h * 0.5)), slice(int(w * 0.45), int(w * 0.55)))
    mouth = (slice(int(h * 0.55), int(h * 0.62)), slice(int(w * 0.42), int(w * 0.58)))
    forehead = (slice(int(h * 0.25), int(h * 0.3)), slice(int(w * 0.45), int(w * 0.55)))
    diff = lambda a, b, r: np.abs(imgs[a][r] - imgs[b][r]).mean()  # noqa: E731
    assert diff(0, 2, mouth) > 20 and diff(0, 2, nose) > 20  # worn mask hides nose and mouth
    assert diff(0, 2, forehead) < 5


@pytest.mark.slow
def test_two_processes_drawing_the_same_set_at_once_both_succeed(tmp_path):
    """Jobs of a sweep started together in a fresh folder draw the default set at the same time."""
    import subprocess
    import sys

    code = ("import sys; from mask_cls.data.synthetic import ensure; "
            "ensure(sys.argv[1], {'train_persons': 6, 'eval_persons': 2, 'image_size': [32, 24], 'workers': 1})")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "synthetic")], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in results), results
    assert (tmp_path / "synthetic" / "synth.json").is_file()
    assert not list(tmp_path.glob(".synthetic.tmp-*"))  # no temp folder left behind
