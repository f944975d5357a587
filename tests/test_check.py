"""task=check on a corpus of broken datasets: every problem, its exact message, usable or not."""

import json
import os
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli


def check_dataset(root):
    """What task=check finds in a competition-layout folder (in process)."""
    from mask_cls.data import layouts
    from mask_cls.data.report import Report

    report = Report()
    layouts.open({"layout": "competition", "root": str(root)}).check(report, lambda items, n: items)
    return report


def _csv(root):
    return pd.read_csv(root / "train" / "train.csv", dtype=str)


def _save(root, df):
    df.to_csv(root / "train" / "train.csv", index=False)


def _person(root, k=0):
    return root / "train" / "images" / _csv(root).path[k]


def _img(root, stem, k=0):
    return next(_person(root, k).glob(f"{stem}.*"))


def c_missing_csv(r):
    (r / "train" / "train.csv").unlink()
    return [("error", str(r / "train" / "train.csv"), "file not found")], False


def c_unknown_gender(r):
    df = _csv(r)
    df.loc[2, "gender"] = "robot"
    _save(r, df)
    return [("error", f"{r}/train/train.csv:4", "unknown gender 'robot' (expected male or female)")], False


def c_bad_age(r):
    df = _csv(r)
    df.loc[0, "age"] = "old"
    _save(r, df)
    return [("error", f"{r}/train/train.csv:2", "age 'old' is not a number")], False


def c_age_out_of_range(r):
    df = _csv(r)
    df.loc[1, "age"] = "200"
    _save(r, df)
    return [("error", f"{r}/train/train.csv:3", "age '200' is out of range 0..120")], False


def c_duplicate_folder(r):
    df = _csv(r)
    _save(r, pd.concat([df, df.iloc[[3]]]))
    return [("error", f"{r}/train/train.csv", f"folder {df.path[3]} listed 2 times")], False


def c_folder_without_row(r):
    df = _csv(r)
    _save(r, df.drop(index=5))
    return [("warning", str(r / "train" / "images" / df.path[5]), "folder without a row in train.csv")], True


def c_row_without_folder(r):
    folder = _person(r, 6)
    shutil.rmtree(folder)
    return [("error", f"{r}/train/train.csv:8", f"folder {folder.name} not found")], False


def c_missing_image(r):
    _img(r, "mask3").unlink()
    return [("error", str(_person(r)), "missing image(s) mask3")], False


def c_two_images_for_one_stem(r):
    src = _img(r, "mask2")
    shutil.copy(src, src.with_suffix(".png" if src.suffix != ".png" else ".jpeg"))
    names = sorted(p.name for p in _person(r).glob("mask2.*"))
    return [("error", str(_person(r)), f"several images for mask2: {', '.join(names)}")], False


def c_extra_file(r):
    (_person(r) / "notes.txt").write_text("hello")
    return [("warning", str(_person(r) / "notes.txt"), "extra file (not one of the 7 expected images)")], True


def c_zero_byte(r):
    p = _img(r, "mask1")
    p.write_bytes(b"")
    return [("error", str(p), "empty file")], False


def c_truncated(r):
    p = _img(r, "normal", 1)
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8))
    p = p.with_suffix(".jpg") if p.suffix == ".png" else p
    for q in _person(r, 1).glob("normal.*"):
        q.unlink()
    p.write_bytes(buf.tobytes()[: len(buf) // 2])
    return [("error", str(p), "truncated image")], False


def c_text_as_image(r):
    p = _img(r, "mask5", 2)
    p.write_text("I am really a text file")
    return [("error", str(p), "not an image")], False


def c_gray_rgba_16bit(r):
    for stem, img in (("mask1", np.full((64, 48), 128, np.uint8)), ("mask2", np.full((64, 48, 4), 200, np.uint8)),
                      ("mask3", np.full((64, 48, 3), 30000, np.uint16))):
        for q in _person(r, 3).glob(f"{stem}.*"):
            q.unlink()
        cv2.imwrite(str(_person(r, 3) / f"{stem}.png"), img)
    return [], True


def c_bom_crlf(r):
    path = r / "train" / "train.csv"
    text = path.read_text().replace("\n", "\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    return [], True


def c_folder_disagrees(r):
    df = _csv(r)
    df.loc[4, "gender"] = "male" if df.gender[4] == "female" else "female"
    _save(r, df)
    return [("error", f"{r}/train/train.csv:6",
             f"folder {df.path[4]} disagrees with the row ({df.id[4]}, {df.gender[4]}, {df.age[4]})")], False


def c_non_ascii_path(r):
    df = _csv(r)
    old = df.path[7]
    new = old.replace(df.race[7], "Ásiañ")
    (r / "train" / "images" / old).rename(r / "train" / "images" / new)
    df.loc[7, ["race", "path"]] = ["Ásiañ", new]
    _save(r, df)
    return [], True


def c_symlink_loop(r):
    os.symlink(".", _person(r, 8) / "loop")
    return [("warning", str(_person(r, 8) / "loop"), "unexpected entry (folder or link) ignored")], True


def c_eval_row_without_file(r):
    info = pd.read_csv(r / "eval" / "info.csv")
    (r / "eval" / "images" / info.ImageID[2]).unlink()
    return [("error", f"{r}/eval/info.csv:4", f"image '{info.ImageID[2]}' not found in {r / 'eval' / 'images'}")], False


def c_eval_file_without_row(r):
    info = pd.read_csv(r / "eval" / "info.csv")
    info.iloc[1:].to_csv(r / "eval" / "info.csv", index=False)
    return [("warning", str(r / "eval" / "images" / info.ImageID[0]), "image without a row in info.csv")], True


def c_info_missing_column(r):
    pd.read_csv(r / "eval" / "info.csv")[["ImageID"]].to_csv(r / "eval" / "info.csv", index=False)
    return [("error", str(r / "eval" / "info.csv"), "missing column(s) ans (has ImageID)")], False


CORRUPTIONS = [v for k, v in dict(globals()).items() if k.startswith("c_")]


def test_corpus_is_large_enough():
    assert len(CORRUPTIONS) >= 15


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__[2:])
def test_each_corruption_is_reported_exactly(corrupt, tiny_copy):
    baseline = {(f.severity, f.file, f.message) for f in check_dataset(tiny_copy).findings}
    expected, usable = corrupt(tiny_copy)
    report = check_dataset(tiny_copy)
    found = {(f.severity, f.file, f.message) for f in report.findings} - baseline
    assert found == set(expected)
    assert report.usable is usable


def test_converted_images_are_counted(tiny_copy):
    c_gray_rgba_16bit(tiny_copy)
    counts = check_dataset(tiny_copy).counts
    assert counts["converted_grayscale"] == 1 and counts["converted_RGBA"] == 1 and counts["converted_16-bit"] == 1


@pytest.mark.slow
def test_cli_exit_codes_and_report(tiny_copy, tmp_path):
    ok = run_cli("task=check", "data=mask", f"data.root={tiny_copy}", f"hydra.run.dir={tmp_path / 'a'}")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert json.loads((tmp_path / "a" / "check.json").read_text())["usable"] is True
    assert "images decoded (train and eval)" in ok.stdout and "images of 64 x 48 (H x W" in ok.stdout
    c_zero_byte(tiny_copy)
    c_unknown_gender(tiny_copy)
    bad = run_cli("task=check", "data=mask", f"data.root={tiny_copy}", f"hydra.run.dir={tmp_path / 'b'}")
    assert bad.returncode == 1
    errors = [ln for ln in bad.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 2  # every problem, not just the first
    report = json.loads((tmp_path / "b" / "check.json").read_text())
    assert report["usable"] is False and len([p for p in report["problems"] if p["severity"] == "error"]) == 2


def test_an_eval_image_that_is_a_training_photo_is_flagged(tiny_copy, tmp_path):
    """task=check across train and eval: an eval image showing a training photo (a copy with bytes
    added) is a warning naming both; the data stays usable."""
    from mask_cls.tasks import get_task
    from tests.conftest import compose_cfg

    train_image = sorted((tiny_copy / "train" / "images").glob("*/mask1.*"))[0]
    target = sorted((tiny_copy / "eval" / "images").iterdir())[0]
    target.write_bytes(train_image.read_bytes() + b"\0padding")
    out = tmp_path / "check"
    out.mkdir()
    cfg = compose_cfg("task=check", "data=mask", f"data.root={tiny_copy}", out=out)
    assert get_task("check")(cfg, out) == 0
    report = json.loads((out / "check.json").read_text())
    assert report["counts"]["eval images that are training images"] == 1
    flagged = [p for p in report["problems"] if "the same picture as training image" in p["message"]]
    assert len(flagged) == 1 and flagged[0]["file"] == str(target) and str(train_image) in flagged[0]["message"]
