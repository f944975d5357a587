"""data=table: any dataset as one CSV behind the layout seam, read to the same table as the
competition layout, folds by person, errors naming the line; and the command as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mask_cls import labels as L
from mask_cls.data import layouts
from mask_cls.data.folds import split
from mask_cls.errors import ConfigError, DataError
from tests.conftest import FAST, run_cli

COLUMNS = ["image", "person", "mask", "gender", "age", "label"]


def _write_table(tiny_root: Path, path: Path, labels_only: bool = False, absolute: bool = False) -> pd.DataFrame:
    """The tiny set's training images as one CSV (paths relative to its folder, or absolute)."""
    ref = layouts.open({"layout": "competition", "root": tiny_root}).read_train()
    rows = pd.DataFrame({"path": [p if absolute else str(Path(p).relative_to(path.parent)) for p in ref["image"]]})
    if labels_only:
        rows["label"] = ref["label"]
    else:
        rows["mask"] = [L.MASK_NAMES[m] for m in ref["mask"]]
        rows["gender"] = [L.GENDER_NAMES[g] for g in ref["gender"]]
        rows["age"] = ref["age"]
    rows.to_csv(path, index=False)
    return ref


def test_table_reads_to_the_competition_table(tiny_root):
    csv = tiny_root / "train" / "as_table.csv"  # removed below: the session's tiny set stays as it was
    try:
        ref = _write_table(tiny_root, csv)
        table = layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()
        ref_persons = ref["person"].map(lambda p: f"images/{p}")
        got = table[COLUMNS].sort_values("image").reset_index(drop=True)
        want = ref.assign(person=ref_persons)[COLUMNS].sort_values("image").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        train, val = split(table, n_folds=3, fold=1, seed=42)
        assert not set(train.person) & set(val.person) and len(val) > 0
        only = _write_table(tiny_root, csv, labels_only=True)
        by_label = layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()
        assert sorted(by_label.label) == sorted(only.label) and not by_label.attrs["ages_known"]
    finally:
        csv.unlink(missing_ok=True)


def test_table_errors_name_the_line(tiny_root, tmp_path):
    image = next((tiny_root / "train" / "images").rglob("normal.*"))
    csv = tmp_path / "t.csv"
    csv.write_text(f"path,mask,gender,age\n{image},wear,male,30\n")
    with pytest.raises(DataError, match=r"t\.csv:2: 1 path\(s\) lie outside data.root=.*; set data.root=/"):
        layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()  # absolute, outside the CSV's folder
    inner = tmp_path / "a.jpg"
    inner.write_bytes(image.read_bytes())
    csv.write_text("path,mask,gender,age\na.jpg,wear,male,30\na.jpg,worn,male,30\n")
    with pytest.raises(DataError, match=r"t\.csv:3: image a\.jpg listed twice"):
        layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()
    csv.write_text("path,mask,gender,age\na.jpg,worn,male,30\n")
    with pytest.raises(DataError, match=r"t\.csv:2: mask 'worn' is not a mask state"):
        layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()
    csv.write_text("path,label\na.jpg,3\n")
    from mask_cls.data.datamodule import MaskDataModule

    with pytest.raises(ConfigError, match="labels only, no ages"):
        MaskDataModule.from_flat(None, csv=str(csv), layout="table", age_threshold=58, num_workers=0).setup("fit")


@pytest.mark.slow
def test_train_on_a_table_as_typed(tiny_root, tmp_path):
    csv = tmp_path / "images.csv"
    _write_table(tiny_root, csv, absolute=True)  # the CSV elsewhere, the images under data.root
    r = run_cli("data=table", f"data.csv={csv}", f"data.root={tiny_root}", *FAST, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    report = json.loads((run / "report" / "scores.json").read_text())
    from mask_cls.data.datamodule import MaskDataModule

    dm = MaskDataModule.from_flat(str(tiny_root), csv=str(csv), layout="table", n_folds=3, num_workers=0)  # FAST's folds
    dm.setup("fit")
    assert metrics["val/f1_best"] > 0 and report["n"] == len(dm.val_table)  # the validation persons' images
    assert report["tta"] == ["none", "hflip"]  # predicted as a submission would be
    assert not (run / "submission.csv").exists()  # no eval set in a table: task=predict images=FOLDER


@pytest.mark.slow
def test_check_a_table_as_typed(tiny_root, tmp_path):
    csv = tmp_path / "images.csv"
    ref = _write_table(tiny_root, csv.parent / "images.csv", absolute=True)
    r = run_cli("task=check", "data=table", f"data.csv={csv}", f"data.root={tiny_root}", "hydra.run.dir=ok",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((tmp_path / "ok" / "check.json").read_text())
    assert report["usable"] and report["counts"]["images"] == len(ref)
    # a half-written image inside the root: not usable, the file named
    broken = tmp_path / "imgs" / "p1" / "x.jpg"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(Path(ref["image"][0]).read_bytes()[:300])
    csv.write_text("path,mask,gender,age\nimgs/p1/x.jpg,wear,male,30\n")
    r = run_cli("task=check", "data=table", f"data.csv={csv}", "hydra.run.dir=bad", cwd=tmp_path)
    assert r.returncode == 1 and "x.jpg" in r.stdout + r.stderr


def test_check_lists_every_problem_of_a_table_with_the_readers_rules(tiny_root, tmp_path):
    """task=check on a table collects each row's problem (line named) and each broken image; the
    first of them is exactly what training stops at: one set of rules."""
    from mask_cls.data.report import Report

    good = next((tiny_root / "train" / "images").rglob("normal.*"))
    (tmp_path / "p").mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / "p" / name).write_bytes(good.read_bytes())
    (tmp_path / "p" / "half.jpg").write_bytes(good.read_bytes()[:300])
    csv = tmp_path / "t.csv"
    csv.write_text("path,mask,gender,age\n"
                   "p/a.jpg,wear,male,30\n"        # 2 fine
                   "p/b.jpg,worn,male,30\n"        # 3 mask
                   "p/c.jpg,wear,other,200\n"      # 4 gender and age
                   "p/missing.jpg,wear,male,30\n"  # 5 not found
                   f"{good},wear,male,30\n"        # 6 outside data.root
                   "p/a.jpg,wear,male,30\n"        # 7 listed twice
                   "p/half.jpg,wear,male,30\n")    # 8 truncated image (only a full decode sees it)
    report = Report()
    layouts.open({"layout": "table", "root": None, "csv": str(csv)}).check(report, lambda items, n: items)
    lines = [(f.file.rsplit(":", 1)[-1] if f.file.startswith(str(csv)) else Path(f.file).name) for f in report.findings]
    assert lines == ["3", "4", "4", "5", "6", "7", "half.jpg"], report.findings
    assert "mask 'worn'" in report.findings[0].message and "age '200'" in report.findings[2].message
    assert not report.usable and report.counts["images"] == 4  # a, b, c, a decoded; half.jpg refused
    with pytest.raises(DataError) as first:
        layouts.open({"layout": "table", "root": None, "csv": str(csv)}).read_train()
    assert str(first.value) == f"{report.findings[0].file}: {report.findings[0].message}"


@pytest.mark.slow
def test_prepare_crops_a_table_and_writes_its_csv_beside_the_copy(tiny_root, tmp_path):
    data = tmp_path / "data"
    (data / "imgs").mkdir(parents=True)
    ref = layouts.open({"layout": "competition", "root": tiny_root}).read_train().groupby("person").head(2).head(6)
    for i, p in enumerate(ref["image"]):
        (data / "imgs" / f"{i}{Path(p).suffix}").write_bytes(Path(p).read_bytes())
    csv = data / "lists" / "train.csv"
    csv.parent.mkdir()
    pd.DataFrame({"path": [f"../imgs/{i}{Path(p).suffix}" for i, p in enumerate(ref["image"])],
                  "label": ref["label"].to_numpy(), "person": ref["person"].to_numpy()}).to_csv(csv, index=False)
    out = tmp_path / "crop"
    r = run_cli("task=prepare", "data=table", f"data.csv={csv}", f"data.root={data}", f"task.out={out}",
                "task.workers=1", f"hydra.run.dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr[-2000:]
    copied = layouts.open({"layout": "table", "root": out, "csv": str(out / "lists" / "train.csv")}).read_train()
    assert list(copied["label"]) == list(ref["label"]) and list(copied["person"]) == list(ref["person"])
    assert all(Path(p).is_relative_to(out.resolve()) and Path(p).is_file() for p in copied["image"])
    assert json.loads((out / "prepare.json").read_text())["images"] == len(ref)
