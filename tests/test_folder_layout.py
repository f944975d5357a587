"""``data=folder``: timm's ImageFolder convention, checked against the competition reader on the
same images."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mask_cls import labels as L
from mask_cls.data import layouts
from tests.conftest import FAST, run_cli


def as_folders(tiny_root: Path, out: Path, with_persons: bool = True, by_index: int = 3) -> Path:
    """The competition set's training images as class folders (class ``by_index`` by its index)."""
    table = layouts.open({"layout": "competition", "root": tiny_root}).read_train()
    for r in table.itertuples():
        c = int(r.label)
        folder = out / (str(c) if c == by_index else L.folder_name(c)) / ("nested" if c % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{r.person}__{Path(r.image).name}" if with_persons else f"{r.person}_{Path(r.image).name}"
        os.link(r.image, folder / name)
    (out / "misc").mkdir()
    (out / ".ipynb_checkpoints").mkdir()
    return out


def test_the_folder_table_equals_the_competition_reader(tiny_root, tmp_path):
    from mask_cls.data.folds import split

    ref = layouts.open({"layout": "competition", "root": tiny_root}).read_train()
    root = as_folders(tiny_root, tmp_path / "folders")
    table = layouts.open({"layout": "folder", "root": root}).read_train()
    key = lambda t: sorted(zip(t["person"], t["label"].astype(int), t["image"].map(lambda p: Path(p).name.split("__")[-1])))  # noqa: E731
    assert key(table) == key(ref) and not table.attrs["ages_known"]
    assert list(table["age"].map(L.age_group)) == list(table["label"] % 3)  # the class's own age group
    train, val = split(table, n_folds=3, fold=0, seed=42)
    assert not set(train.person) & set(val.person) and len(val)


def test_images_without_a_person_warn_that_folds_can_leak(tiny_root, tmp_path, caplog):
    root = as_folders(tiny_root, tmp_path / "folders", with_persons=False)
    with caplog.at_level("WARNING", logger="mask_cls"):
        table = layouts.open({"layout": "folder", "root": root}).read_train()
    assert table["person"].nunique() == len(table)
    assert f"{len(table)} of {len(table)} image(s) have no person in their name" in caplog.text
    assert "1 folder(s) are no class and are left out: misc" in caplog.text


@pytest.mark.slow
def test_train_and_check_on_class_folders_as_typed(tiny_root, tmp_path):
    root = as_folders(tiny_root, tmp_path / "folders")
    out = tmp_path / "run"
    r = run_cli("data=folder", f"data.root={root}", *FAST, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads((out / "metrics.json").read_text())["val/f1"] >= 0
    assert not (out / "submission.csv").exists()  # no eval set: images=FOLDER predicts
    r = run_cli("task=check", "data=folder", f"data.root={root}", f"hydra.run.dir={tmp_path / 'check'}")
    assert r.returncode == 0, r.stdout[-2000:]
    report = json.loads((tmp_path / "check" / "check.json").read_text())
    assert report["counts"]["images listed"] == len(layouts.open({"layout": "competition", "root": tiny_root}).read_train())
    assert [p["message"] for p in report["problems"]] == [
        "1 folder(s) are no class and are left out: misc (class folders: 0..17 or names like wear_male_under30)"]


@pytest.mark.parametrize("name, expected", [("0", 0), ("07", 7), ("17", 17), ("18", None), ("wear_male_under30", 0),
                                            ("not_wear_female_60plus", 17), ("wear/male/<30", None)])
def test_class_folder_names(name, expected):
    from mask_cls.data.layouts.folder import class_of

    assert class_of(name) == expected


@pytest.mark.slow
def test_a_root_without_class_folders_is_one_line_at_once(tmp_path):
    root = tmp_path / "data"
    (root / "photos").mkdir(parents=True)
    shutil.copy(__file__, root / "photos" / "x.py")
    r = run_cli("data=folder", f"data.root={root}", f"hydra.run.dir={tmp_path / 'r'}")
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 1 and errors == [f"error: {root}: no class folders (0..17 or names like "
                                            "wear_male_under30; found: photos)"]
