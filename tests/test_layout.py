import shutil

import pandas as pd
import pytest

from mask_cls import labels as L
from mask_cls.data.layouts.competition.tables import read_eval, read_train
from mask_cls.errors import DataError


def test_reads_every_person_with_seven_images(tiny_root):
    t = read_train(tiny_root)
    csv = pd.read_csv(tiny_root / "train" / "train.csv", dtype=str)
    assert len(t) == 7 * len(csv)
    assert (t.groupby("person").size() == 7).all()
    assert set(t.person) == set(csv.path)
    # hidden files (._x, .ipynb_checkpoints) never become images
    assert not t.image.str.contains(r"/\._|ipynb_checkpoints").any()


def test_labels_follow_folder_and_file_names(tiny_root):
    t = read_train(tiny_root)
    for r in t.sample(40, random_state=0).itertuples():
        _, gender, _, age = r.person.split("_")
        stem = r.image.rsplit("/", 1)[1].rsplit(".", 1)[0]
        assert r.label == L.encode(L.MASK_FILES[stem], L.GENDER_CODES[gender], L.age_group(int(age)))


def test_repeated_id_is_two_persons(tiny_root):
    t = read_train(tiny_root)
    by_id = t.groupby("id").person.nunique()
    assert (by_id == 2).sum() == 1


def test_hidden_files_and_mixed_extensions(tiny_copy):
    folder = next((tiny_copy / "train" / "images").glob("0*"))
    for f in list(folder.iterdir()):
        if f.stem == "mask2":
            f.rename(f.with_suffix(".png" if f.suffix != ".png" else ".jpeg"))
    (folder / "._mask3.jpg").write_bytes(b"\x00\x05\x16\x07junk")
    (folder / ".ipynb_checkpoints").mkdir(exist_ok=True)
    (folder / ".ipynb_checkpoints" / "normal.jpg").write_bytes(b"junk")
    t = read_train(tiny_copy)
    mine = t[t.person == folder.name]
    assert len(mine) == 7 and not mine.image.str.contains("ipynb|/\\._").any()


def test_eval_rows_in_info_order(tiny_root):
    e = read_eval(tiny_root)
    info = pd.read_csv(tiny_root / "eval" / "info.csv")
    assert list(e.ImageID) == list(info.ImageID)
    assert all(p.endswith(i) for p, i in zip(e.image, e.ImageID))


# --- bad input: one-line messages naming the file ---------------------------------------

def _edit_csv(root, fn):
    path = root / "train" / "train.csv"
    df = pd.read_csv(path, dtype=str)
    fn(df)
    df.to_csv(path, index=False)


def test_missing_csv(tiny_copy):
    (tiny_copy / "train" / "train.csv").unlink()
    with pytest.raises(DataError, match=r"train\.csv: file not found"):
        read_train(tiny_copy)


def test_missing_images_folder(tiny_copy):
    shutil.rmtree(tiny_copy / "train" / "images")
    with pytest.raises(DataError, match=r"images: folder not found"):
        read_train(tiny_copy)


def test_unknown_gender(tiny_copy):
    _edit_csv(tiny_copy, lambda df: df.__setitem__("gender", df.gender.where(df.index != 2, "robot")))
    with pytest.raises(DataError, match=r"train\.csv:4: unknown gender 'robot'"):
        read_train(tiny_copy)


def test_non_numeric_age(tiny_copy):
    _edit_csv(tiny_copy, lambda df: df.__setitem__("age", df.age.where(df.index != 0, "old")))
    with pytest.raises(DataError, match=r"train\.csv:2: age 'old' is not a number"):
        read_train(tiny_copy)


def test_person_folder_missing_an_image(tiny_copy):
    folder = next((tiny_copy / "train" / "images").glob("0*"))
    next(folder.glob("incorrect_mask.*")).unlink()
    with pytest.raises(DataError, match=rf"{folder.name}: missing image\(s\) incorrect_mask"):
        read_train(tiny_copy)


def test_unreadable_image(tiny_copy):
    folder = next((tiny_copy / "train" / "images").glob("0*"))
    bad = next(folder.glob("mask4.*"))
    bad.write_text("this is not an image")
    with pytest.raises(DataError, match=rf"{bad.name}: (unreadable image|not an image)"):
        read_train(tiny_copy)


def test_info_row_without_file(tiny_copy):
    info = pd.read_csv(tiny_copy / "eval" / "info.csv")
    (tiny_copy / "eval" / "images" / info.ImageID[3]).unlink()
    with pytest.raises(DataError, match=rf"info\.csv:5: image '{info.ImageID[3]}' not found"):
        read_eval(tiny_copy)


def test_person_folder_not_found(tiny_copy):
    folder = sorted((tiny_copy / "train" / "images").glob("0*"))[4]
    shutil.rmtree(folder)
    with pytest.raises(DataError, match=rf"{folder.name}: person folder of train\.csv line \d+ not found"):
        read_train(tiny_copy)
