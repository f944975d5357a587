"""The Python API: ``Predictor`` gives task=predict's numbers, from files or arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mask_cls import labels as L
from tests.conftest import FAST, run_cli

pytestmark = pytest.mark.slow  # every test here starts a command


@pytest.fixture(scope="module")
def cv_run(tiny_root, tmp_path_factory):
    """A 2-fold cv run (two models whose outputs differ) and task=predict's probs.csv from it."""
    base = tmp_path_factory.mktemp("api")
    r = run_cli("task=cv", "data=mask", f"data.root={tiny_root}", *FAST, "data.n_folds=2", "tta=[hflip,none]",
                f"hydra.run.dir={base / 'cv'}")
    assert r.returncode == 0, r.stderr[-3000:]
    r = run_cli("task=predict", f"run_dir={base / 'cv'}", "task.save_probs=true", f"hydra.run.dir={base / 'pred'}")
    assert r.returncode == 0, r.stderr[-3000:]
    return base / "cv", pd.read_csv(base / "pred" / "probs.csv")


def test_predictor_gives_task_predicts_numbers(cv_run, tiny_root):
    from mask_cls import Prediction, Predictor

    run, probs = cv_run
    p = Predictor.from_run(run)
    assert len(p.modules) == 2 and p.tta == ["hflip", "none"]  # the run's own TTA, not the default
    paths = [str(tiny_root / "eval" / "images" / i) for i in probs.ImageID]
    ours = p.predict_probs(paths)
    np.testing.assert_allclose(ours, probs[L.PROB_COLUMNS].to_numpy(), atol=1e-6)
    # the two fold models really differ, so the average is a real ensemble
    alone = [Predictor([m], [1.0], p.tta).predict_probs(paths) for m in p.modules]
    assert np.abs(alone[0] - alone[1]).max() > 1e-3
    np.testing.assert_allclose(ours, (alone[0] + alone[1]) / 2, atol=1e-6)
    first = p.predict(paths[:3])
    assert all(isinstance(x, Prediction) for x in first)
    for x, row in zip(first, ours[:3]):
        m, g, a = L.decode(int(row.argmax()))
        assert (x.label, x.mask, x.gender, x.age) == (int(row.argmax()), L.MASK_NAMES[m], L.GENDER_NAMES[g],
                                                      L.AGE_NAMES[a])
        np.testing.assert_allclose(x.probs, row, atol=1e-6)  # a batch of 3 vs all: the same to 1e-6


def test_arrays_and_files_give_the_same_numbers(cv_run, tiny_root):
    import cv2

    from mask_cls import Predictor

    run, probs = cv_run
    p = Predictor.from_run(run, tta=["none"])
    path = tiny_root / "eval" / "images" / probs.ImageID[0]
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    both = p.predict_probs([rgb, str(path)])
    np.testing.assert_allclose(both[0], both[1], atol=1e-6)
    with pytest.raises(ValueError, match="RGB uint8"):
        p.predict_probs([rgb.astype(np.float32)])
    from PIL import Image

    with Image.open(path) as im:  # a PIL image gives the numbers of its file
        np.testing.assert_allclose(p.predict_probs([im])[0], both[1], atol=1e-6)
    with pytest.raises(TypeError, match="image 1: a Predictor takes image paths, RGB uint8 arrays .* not bytes"):
        p.predict_probs([str(path), path.read_bytes()])


def test_bgr_arrays_are_warned_about_once_and_predicted_as_given(cv_run, tiny_root, caplog):
    """A batch read with cv2.imread and passed on unconverted: one warning naming the fix; the
    numbers stay those of the arrays as given (nothing is swapped behind the user's back)."""
    import logging

    import cv2

    from mask_cls import Predictor
    from tests.test_channel_order import face

    run, probs = cv_run
    p = Predictor.from_run(run, tta=["none"])
    rgb = [cv2.resize(face(), (48, 64)) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="mask_cls"):
        as_rgb = p.predict_probs(rgb)
    assert "look BGR" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="mask_cls"):
        as_bgr = p.predict_probs([a[..., ::-1].copy() for a in rgb])
    warned = [r for r in caplog.records if "look BGR" in r.getMessage()]
    assert len(warned) == 1 and "cv2.cvtColor(img, cv2.COLOR_BGR2RGB)" in warned[0].getMessage()
    assert np.abs(as_bgr - as_rgb).max() > 1e-4  # predicted as given: the swapped colours change the numbers


def test_the_readme_python_example_as_written(cv_run, tiny_root, capsys):
    """README's "From Python" block, run with its placeholders filled: a run and two images."""
    import re

    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text()
    block = re.search(r"\*\*From Python\*\*.*?```python\n(.*?)```", text, re.S).group(1)
    run, probs = cv_run
    images = [str(tiny_root / "eval" / "images" / i) for i in probs.ImageID[:2]]
    code = (block.replace("outputs/cv/runs/<time>", str(run)).replace("face1.jpg", images[0])
            .replace("face2.png", images[1]))
    exec(compile(code, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    for line, row in zip(lines, probs[L.PROB_COLUMNS].to_numpy()[:2]):
        label, mask, gender, age, top = line.split()
        assert int(label) == int(row.argmax()) and float(top) == pytest.approx(row.max(), abs=0.006)
        assert L.class_name(int(label)) == f"{mask}/{gender}/{age}"


def test_export_of_a_cv_run_as_typed(cv_run, tiny_root, tmp_path):
    """task=export run_dir=<cv run>: model.onnx (both folds and the run's TTA in one graph) gives
    task=predict's probabilities from uint8 images with no project code; the safetensors export
    loads back into Predictor with the same numbers; the model card is filled from the run."""
    import json

    import cv2
    import onnxruntime as ort

    from mask_cls import Predictor

    run, probs = cv_run
    out = tmp_path / "export"
    r = run_cli("task=export", f"run_dir={run}", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    paths = [str(tiny_root / "eval" / "images" / i) for i in probs.ImageID]
    images = np.stack([cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB).transpose(2, 0, 1) for p in paths])
    got = ort.InferenceSession(str(out / "model.onnx")).run(["probs"], {"images": images})[0]
    want = probs[L.PROB_COLUMNS].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert (got.argmax(1) == want.argmax(1)).all()
    np.testing.assert_allclose(Predictor.from_export(out).predict_probs(paths), want, atol=1e-6)
    card = (out / "MODEL_CARD.md").read_text()
    for section in ("## Task and labels", "## Training data", "## Metrics", "## How it was made",
                    "## Intended use and limitations", "must not be used to make decisions about people"):
        assert section in card
    assert "every fold's held-out persons" in card and "persons by race" in card and "| race = " in card
    for k in (0, 1):  # each fold's kept checkpoint, by name and rule
        best = json.loads((run / f"fold_{k}" / "metrics.json").read_text())["best_checkpoint"].rsplit("/", 1)[-1]
        assert f"- model: `fold_{k}/checkpoints/{best}` (kept by `task.keep=best`, the epoch of the highest val/f1)" in card
    # the figures are the exported model's: each fold's calibrated held-out predictions, pooled
    from sklearn.metrics import f1_score

    pooled = pd.concat([pd.read_csv(run / f"fold_{k}" / "report" / "predictions_calibrated.csv") for k in (0, 1)])
    f1 = f1_score(pooled.label, pooled[L.PROB_COLUMNS].to_numpy().argmax(1), average="macro")
    assert f"| {f1:.4f} |" in card and "with the temperatures the export applies" in card
    from mask_cls.data.images import INPUT_CONTRACT

    assert json.loads((out / "export.json").read_text())["input"] == INPUT_CONTRACT  # the contract travels
    assert INPUT_CONTRACT["resize"] in card
    # and how the training photos were framed (the cv run's fold 0 manifest: synthetic 64 x 48 photos)
    framing = json.loads((out / "export.json").read_text())["photos"]
    assert framing == json.loads((run / "fold_0" / "manifest.json").read_text())["data"]["photos"]
    assert framing["h_over_w"] == pytest.approx(64 / 48, abs=1e-3) and framing["prepare"] is None
    assert "- photos: median height / width 1.33" in card
    assert "max" not in r.stderr.lower() or "parity at batch 32" in r.stdout + r.stderr
    assert not list(out.glob("*.pkl")) and not list(out.glob("*.ckpt"))  # no pickle in an export


def test_predict_a_folder_of_ordinary_photos_with_face_crops(cv_run, tmp_path):
    """task=predict images=FOLDER task.crop=face: each photo's face found and cropped as task=prepare
    crops, then classified: the numbers are those of the crop itself; a photo without a face is
    centre-cropped and says so (empty box)."""
    import cv2

    from mask_cls import Predictor
    from mask_cls.data.facecrop import crop_box, face_box
    from mask_cls.data.synthetic import SynthConfig, generate

    run, _ = cv_run
    generate(tmp_path / "s", SynthConfig(train_persons=6, eval_persons=0, image_size=(512, 384), seed=1, workers=1),
             progress=False)
    face = next(img for f in sorted((tmp_path / "s" / "train" / "images").glob("*/normal.*"))
                if (img := cv2.imread(str(f))) is not None and face_box(img, 0.15) is not None)
    frame = np.full((900, 700, 3), 90, np.uint8)
    frame[250:250 + face.shape[0], 160:160 + face.shape[1]] = face
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "frame.png"), frame)
    cv2.imwrite(str(photos / "wall.png"), np.full((300, 200, 3), 128, np.uint8))
    r = run_cli("task=predict", f"run_dir={run}", f"images={photos}", "task.crop=face", f"hydra.run.dir={tmp_path / 'p'}")
    assert r.returncode == 0, r.stderr[-3000:]
    pred = pd.read_csv(tmp_path / "p" / "predictions.csv").set_index("path")
    row = pred.loc[str(photos / "frame.png")]
    (x, y, w, h), _ = face_box(frame, 0.15)
    assert (row.face_x, row.face_y, row.face_w, row.face_h) == (x, y, w, h) and row.face_score >= 0.6
    assert np.isnan(pred.loc[str(photos / "wall.png")].face_x)  # no face: a centre crop
    x0, y0, x1, y1 = crop_box(frame.shape[:2], (x, y, w, h), 0.3, 0.75)
    crop = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2RGB)
    want = Predictor.from_run(run).predict_probs([np.ascontiguousarray(crop)])[0]
    np.testing.assert_allclose(row[L.PROB_COLUMNS].to_numpy(dtype=float), want, atol=1e-5)
    # the Predictor crops the same way itself, from the file or from its array
    cropping = Predictor.from_run(run, crop="face")
    np.testing.assert_allclose(cropping.predict_probs([photos / "frame.png"])[0], want, atol=1e-5)
    np.testing.assert_allclose(cropping.predict_probs([cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)])[0], want, atol=1e-5)
    assert not np.allclose(Predictor.from_run(run).predict_probs([photos / "frame.png"])[0], want, atol=1e-3)
    wider = Predictor.from_run(run, crop={"margin": 0.6}).predict_probs([photos / "frame.png"])[0]
    assert not np.allclose(wider, want, atol=1e-4)  # its own margin
    from mask_cls.errors import ConfigError

    with pytest.raises(ConfigError, match="crop="):
        Predictor.from_run(run, crop={"zoom": 2})


@pytest.mark.slow
def test_the_model_card_of_a_train_run_counts_its_training_side_and_an_ensemble_has_no_figure(trained, tiny_root,
                                                                                              tmp_path):
    from sklearn.metrics import f1_score

    from mask_cls.data import layouts
    from mask_cls.evaluation.calibration import expected_calibration_error
    from mask_cls.export.card import write_card

    table = layouts.open({"layout": "competition", "root": str(tiny_root)}).read_train(check_images=False)
    parity = {"opset": 17, "batches": [], "tolerance": 1e-4}
    args = (["m"], ["none"], [64, 48], table, {"root": str(tiny_root)}, "python run.py task=export", [], "abc", parity)
    card = write_card(tmp_path, [str(trained)], *args, calibrated=True).read_text()
    val = pd.read_csv(trained / "report" / "predictions_calibrated.csv")
    probs = val[L.PROB_COLUMNS].to_numpy()
    f1 = f1_score(val.label, probs.argmax(1), average="macro")
    assert f"| {f1:.4f} |" in card and f"| {expected_calibration_error(val.label.to_numpy(), probs):.4f} |" in card
    held = table[table.image.astype(str).isin(set(val.image))].person.nunique()
    trained_on = table.person.nunique() - held
    assert held > 0 and f"the {trained_on} persons the model trained on (its {held} validation persons left out)" in card
    assert f"- {trained_on} persons," in card
    (tmp_path / "two").mkdir()
    card = write_card(tmp_path / "two", [str(trained), str(trained)], *args, calibrated=True).read_text()
    assert "no held-out figure exists for an ensemble of several runs" in card and "| macro F1" not in card


@pytest.mark.slow
def test_the_input_contract_gives_the_tools_numbers(cv_run, tiny_root, tmp_path):
    """A large JPEG prepared as export.json's ``input`` says (reduced decode, BGR to RGB, linear
    resize) gives exactly the Predictor's numbers for the file; the whole photo given as an RGB
    array is shrunk by the same factor first, and lands closer than the array taken as it is."""
    import cv2

    from mask_cls import Predictor
    from mask_cls.data.images import INPUT_CONTRACT, read_rgb, reduce_array

    run, probs = cv_run
    p = Predictor.from_run(run, tta=["none"])
    h, w = p.image_size
    small = cv2.imread(str(tiny_root / "eval" / "images" / probs.ImageID[0]))
    big = tmp_path / "big.jpg"
    size = (w * 8 + 20, h * 8 + 28)  # shrunk by 8 to 50 x 67: the linear resize to 48 x 64 still has work to do
    cv2.imwrite(str(big), cv2.resize(small, size, interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 95])
    prepared = cv2.resize(cv2.cvtColor(cv2.imread(str(big), cv2.IMREAD_REDUCED_COLOR_8), cv2.COLOR_BGR2RGB), (w, h),
                          interpolation=cv2.INTER_LINEAR)
    full = cv2.cvtColor(cv2.imread(str(big)), cv2.COLOR_BGR2RGB)
    from_file, from_recipe, from_array = p.predict_probs([str(big), prepared, full])
    np.testing.assert_allclose(from_recipe, from_file, atol=1e-6)
    shrunk = reduce_array(full, (h, w))  # by 8, as the file's decode: 50 x 67
    assert shrunk.shape[:2] == (-(-size[1] // 8), -(-size[0] // 8))
    np.testing.assert_allclose(from_array, p.predict_probs([shrunk])[0], atol=1e-6)  # the Predictor shrinks arrays
    # what the model sees: the shrunk array is near the file's own decode, the array taken as it is further
    seen = {name: cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR).astype(float)
            for name, img in (("file", read_rgb(big, (h, w))), ("shrunk", shrunk), ("as_is", full))}
    near, far = (np.abs(seen[k] - seen["file"]).mean() for k in ("shrunk", "as_is"))
    assert near < 0.9 * far, (near, far)  # mean pixel difference 1.9 against 2.5 here
    assert "IMREAD_REDUCED_COLOR_k" in INPUT_CONTRACT["decode"] and "INTER_LINEAR" in INPUT_CONTRACT["resize"]
