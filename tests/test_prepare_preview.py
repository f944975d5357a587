import json

from mask_cls.data.facecrop import crop_box
from mask_cls.data.layouts.competition.tables import read_eval, read_train
from tests.conftest import run_cli


def test_crop_box_keeps_aspect_and_stays_inside():
    x0, y0, x1, y1 = crop_box((400, 300), (100, 120, 80, 100), margin=0.3, aspect=0.75)
    assert 0 <= x0 < x1 <= 300 and 0 <= y0 < y1 <= 400
    assert abs((x1 - x0) / (y1 - y0) - 0.75) < 0.02
    assert x0 <= 100 and x1 >= 180 and y0 <= 120 and y1 >= 220  # the face is inside
    cx0, cy0, cx1, cy1 = crop_box((400, 300), None, margin=0.3, aspect=0.75)  # centre crop
    assert abs((cx0 + cx1) / 2 - 150) <= 1 and abs((cy0 + cy1) / 2 - 200) <= 1


def test_prepare_writes_the_same_layout_and_resumes(tiny_root, tmp_path):
    out = tmp_path / "crop"
    args = ["task=prepare", "data=mask", f"data.root={tiny_root}", f"task.out={out}", "task.workers=2",
            f"hydra.run.dir={tmp_path / 'run'}"]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    src, dst = read_train(tiny_root), read_train(out)
    assert list(dst.person) == list(src.person) and list(dst.label) == list(src.label)
    assert list(read_eval(out).ImageID) == list(read_eval(tiny_root).ImageID)
    report = json.loads((out / "prepare.json").read_text())
    assert report["cropped"] == report["images"] == len(src) + len(read_eval(tiny_root))
    assert 0 <= report["detection_rate"] <= 1 and "faces found" in r.stdout + r.stderr
    assert (out / "prepare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # photos beside their crops
    import cv2

    a, b = cv2.imread(src.image[0]), cv2.imread(dst.image[0])
    assert b.shape[0] <= a.shape[0] and b.shape[1] < a.shape[1]  # cropped
    # resumable: a second run finds everything done
    r = run_cli(*args[:-1], f"hydra.run.dir={tmp_path / 'run2'}")
    assert r.returncode == 0
    again = json.loads((out / "prepare.json").read_text())
    assert again == report and "already cropped" in r.stdout + r.stderr  # the first run's figures stay


def test_preview_png(tiny_root, tmp_path):
    r = run_cli("task=preview", "data=mask", f"data.root={tiny_root}", "data.image_size=[64,48]", "data.n_folds=3",
                "augment=seed", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr[-2000:]
    png = (tmp_path / "preview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    import numpy as np
    from PIL import Image

    white = (np.asarray(Image.open(tmp_path / "preview.png").convert("L")) >= 250).all(1)
    longest = run = 0
    for row in white:  # the tallest band of white rows
        run = run + 1 if row else 0
        longest = max(longest, run)
    assert longest < 0.03 * len(white)  # rows packed: no band of white (it was 10% of the height)
