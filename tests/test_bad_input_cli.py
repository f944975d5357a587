"""Bad data through run.py: one line naming the file, exit 1, no traceback, nothing written."""

import pandas as pd
import pytest

from tests.conftest import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


def _missing_csv(root):
    (root / "train" / "train.csv").unlink()
    return "train.csv: file not found"


def _unknown_gender(root):
    p = root / "train" / "train.csv"
    df = pd.read_csv(p, dtype=str)
    df.loc[1, "gender"] = "unknown"
    df.to_csv(p, index=False)
    return "train.csv:3: unknown gender 'unknown' (expected male or female)"


def _bad_age(root):
    p = root / "train" / "train.csv"
    df = pd.read_csv(p, dtype=str)
    df.loc[0, "age"] = "forty"
    df.to_csv(p, index=False)
    return "train.csv:2: age 'forty' is not a number"


def _missing_image(root):
    folder = sorted((root / "train" / "images").glob("0*"))[2]
    next(folder.glob("normal.*")).unlink()
    return f"{folder.name}: missing image(s) normal"


def _unreadable(root):
    folder = sorted((root / "train" / "images").glob("0*"))[1]
    f = next(folder.glob("mask1.*"))
    f.write_bytes(b"")
    return f"{f.name}: empty file"


def _eval_row_without_file(root):
    info = pd.read_csv(root / "eval" / "info.csv")
    (root / "eval" / "images" / info.ImageID[0]).unlink()
    return f"info.csv:2: image '{info.ImageID[0]}' not found in {root / 'eval' / 'images'}"


@pytest.mark.parametrize("corrupt", [_missing_csv, _unknown_gender, _bad_age, _missing_image,
                                     _unreadable, _eval_row_without_file])
def test_bad_data_one_line_error(corrupt, tiny_copy, tmp_path):
    expected = corrupt(tiny_copy)
    out = tmp_path / "run"
    r = run_cli("data=mask", f"data.root={tiny_copy}", f"hydra.run.dir={out}", *FAST)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith(expected), r.stderr
    assert "Traceback" not in r.stderr
    for name in ("metrics.json", "submission.csv"):
        assert not (out / name).exists()
    assert not list(out.glob(".*.tmp"))


def test_unknown_backbone(tiny_root, tmp_path):
    r = run_cli("data=mask", f"data.root={tiny_root}", f"hydra.run.dir={tmp_path}", *FAST,
                "model.backbone=resnet_does_not_exist")
    assert r.returncode == 1
    assert "model.backbone='resnet_does_not_exist' is not a timm model" in r.stderr
