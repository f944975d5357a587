import json
import shutil
from pathlib import Path

import pytest

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


@pytest.mark.slow
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
    assert report["detector"] == "yunet"  # the default
    import pandas as pd

    boxes = pd.read_csv(out / "boxes.csv", dtype={"image": str})
    assert len(boxes) == report["cropped"] and boxes.score.notna().sum() == report["faces_found"]
    assert set(boxes.image) == {str(Path(i).relative_to(tiny_root)) for i in [*src.image, *read_eval(tiny_root).image]}
    assert (out / "prepare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # photos beside their crops
    import cv2

    a, b = cv2.imread(src.image[0]), cv2.imread(dst.image[0])
    assert b.shape[0] <= a.shape[0] and b.shape[1] < a.shape[1]  # cropped
    # resumable: a second run finds everything done
    r = run_cli(*args[:-1], f"hydra.run.dir={tmp_path / 'run2'}")
    assert r.returncode == 0
    again = json.loads((out / "prepare.json").read_text())
    assert again == report and "already cropped" in r.stdout + r.stderr  # the first run's figures stay
    # the rule travels: the copy says how it was cropped, a model trained on it records it, and
    # predict task.crop=face crops new photos that way unless told otherwise (then it warns)
    assert report["crop"] == {"detector": "yunet", "margin": 0.3, "aspect": 0.75, "min_face": 0.15}
    from tests.conftest import FAST

    run = tmp_path / "trained"
    r = run_cli("data=mask", f"data.root={out}", *FAST, "task.predict=false", f"hydra.run.dir={run}")
    assert r.returncode == 0, r.stderr[-2000:]
    photos = json.loads((run / "manifest.json").read_text())["data"]["photos"]
    assert photos["prepare"] == report["crop"] and 0.5 < photos["h_over_w"] < 3
    folder = tmp_path / "photos"
    folder.mkdir()
    for image in read_eval(tiny_root).image[:2]:
        shutil.copy(image, folder)
    r = run_cli("task=predict", f"run_dir={run}", f"images={folder}", "task.crop=face", "task.margin=0.6",
                f"hydra.run.dir={tmp_path / 'pred'}")
    assert r.returncode == 0, r.stderr[-2000:]
    said = r.stdout + r.stderr
    assert "crop as the model trained (the training data's task=prepare rule)" in said
    assert "task.margin=0.6, but the model trained on margin=0.3" in said


@pytest.mark.slow
def test_preview_png(tiny_root, tmp_path):
    r = run_cli("task=preview", "data=mask", f"data.root={tiny_root}", "data.image_size=[64,48]", "data.n_folds=3",
                "augment=seed", f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "preview: reading" in r.stdout and "preview: 18/18 classes (100%)" in r.stdout  # never silent
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


def test_yunet_boxes_are_in_the_original_images_pixels(tmp_path):
    """A face the detector finds keeps its box when the photo is pasted into a larger frame at a
    known place: the box moves by exactly that offset (the competition's photos are upper bodies
    in 384x512 frames, not crops)."""
    import cv2
    import numpy as np

    from mask_cls.data.facecrop import face_box
    from mask_cls.data.synthetic import SynthConfig, generate

    generate(tmp_path / "s", SynthConfig(train_persons=6, eval_persons=0, image_size=(512, 384), seed=1, workers=1),
             progress=False)
    found = None
    for f in sorted((tmp_path / "s" / "train" / "images").glob("*/normal.*")):
        img = cv2.imread(str(f))
        if img is not None and (face := face_box(img, 0.15, "yunet")) is not None:
            found = img, face
            break
    assert found is not None, "YuNet found none of the drawn faces"
    img, ((x, y, w, h), score) = found
    frame = np.random.default_rng(0).integers(0, 256, (900, 700, 3), dtype=np.uint8)
    dy, dx = 250, 160
    frame[dy:dy + img.shape[0], dx:dx + img.shape[1]] = img
    (fx, fy, fw, fh), fscore = face_box(frame, 0.05, "yunet")
    inter = max(0, min(fx + fw, x + dx + w) - max(fx, x + dx)) * max(0, min(fy + fh, y + dy + h) - max(fy, y + dy))
    assert inter / (fw * fh + w * h - inter) > 0.8 and 0.6 <= fscore <= 1 and 0.6 <= score <= 1
    import pytest

    from mask_cls.errors import ConfigError

    with pytest.raises(ConfigError, match="task.detector='dlib'"):
        face_box(img, 0.15, "dlib")


@pytest.mark.parametrize("photo, size, warned", [
    ((128, 128), (256, 192), True),    # square faces at the default size: squeezed
    ((512, 384), (256, 192), False),   # the competition's 4:3 portraits
    ((128, 128), (224, 224), False),
    ((110, 100), (100, 100), False),   # 10% off: within the limit
    ((112, 100), (100, 100), True),    # 12% off
])
def test_preview_says_when_the_resize_stretches_the_photos(caplog, photo, size, warned):
    import logging

    from mask_cls.tasks.preview import _aspect_note

    with caplog.at_level(logging.WARNING, logger="mask_cls"):
        _aspect_note([(*photo, 3)] * 5, size)
    assert ("the resize stretches them" in caplog.text) == warned


def test_prepare_png_shows_one_photo_per_person_first():
    from mask_cls.tasks.prepare import _spread

    images = [f"/d/{p}/{m}.jpg" for p in ("a", "b", "c") for m in ("mask1", "mask2", "normal")]
    assert _spread(images, 4) == ["/d/a/mask1.jpg", "/d/b/mask1.jpg", "/d/c/mask1.jpg", "/d/a/mask2.jpg"]
    assert _spread(images[:2], 6) == images[:2] and _spread([], 6) == []
