"""How the training photos were framed travels with the model: task=prepare's rule and the photos'
shape, read as data, and the crop predict task.crop=face chooses from them."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from mask_cls.data.crop_rule import crop_settings, photo_shape, prepare_rule, trained_on

GOOD = {"detector": "yunet", "margin": 0.05, "aspect": 1.0, "min_face": 0.15}
TASK = OmegaConf.create({"detector": "yunet", "margin": 0.3, "aspect": 0.75, "min_face": 0.15})


def _prepared(tmp_path, crop) -> str:
    (tmp_path / "prepare.json").write_text(json.dumps({"images": 10, "crop": crop}))
    return str(tmp_path)


@pytest.mark.parametrize("change, valid", [
    ({}, True), ({"margin": 2.0}, True), ({"margin": 2.01}, False), ({"margin": 0.0}, True), ({"margin": -0.1}, False),
    ({"aspect": 0.2}, True), ({"aspect": 0.19}, False), ({"aspect": "1.0"}, False), ({"aspect": True}, False),
    ({"min_face": 1.0}, True), ({"min_face": 1.5}, False), ({"detector": "haar"}, True),
    ({"detector": "../../evil"}, False), ({"margin": None}, False),
])
def test_the_prepare_rule_is_read_as_data_and_range_checked(tmp_path, caplog, change, valid):
    with caplog.at_level(logging.WARNING, logger="mask_cls"):
        found = prepare_rule(_prepared(tmp_path, GOOD | change))
    assert (found == GOOD | change) if valid else (found is None and "crop rule left out" in caplog.text)


def test_no_rule_where_prepare_made_none_or_the_file_is_not_one(tmp_path, caplog):
    assert prepare_rule(None) is None and prepare_rule(tmp_path) is None  # no prepare.json
    (tmp_path / "prepare.json").write_text(json.dumps({"images": 3, "detector": "yunet"}))  # an older copy
    assert prepare_rule(tmp_path) is None
    (tmp_path / "prepare.json").write_text("[" * 100_000)
    with caplog.at_level(logging.WARNING, logger="mask_cls"):
        assert prepare_rule(tmp_path) is None
    assert "not read" in caplog.text


def test_the_photos_shape_is_the_median_of_their_headers(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(48, 64)] * 5 + [(100, 100)] * 2 + [(10, 90)]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(paths[-1])
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    assert photo_shape([*paths, str(tmp_path / "broken.jpg")]) == pytest.approx(64 / 48, abs=1e-4)
    assert photo_shape([]) is None


RULE = {"h_over_w": 1.0, "prepare": GOOD}


@pytest.mark.parametrize("photos, typed, want, warned", [
    (None, set(), {"margin": 0.3, "aspect": 0.75}, False),                                    # nothing known: defaults
    (RULE, set(), {"margin": 0.05, "aspect": 1.0}, False),                                    # the prepare rule
    (RULE, {"task.margin"}, {"margin": 0.3, "aspect": 1.0}, True),                            # typed and different
    ({"h_over_w": 1.0, "prepare": None}, set(), {"margin": 0.3, "aspect": 1.0}, False),      # square photos
    ({"h_over_w": 1.0, "prepare": None}, {"task.aspect"}, {"aspect": 0.75}, True),
    ({"h_over_w": 1.30, "prepare": None}, {"task.aspect"}, {"aspect": 0.75}, False),         # within 10%
    ({"h_over_w": 1 / 0.75, "prepare": None}, set(), {"aspect": 0.75}, False),               # the competition's 3:4
])
def test_predict_crops_as_the_model_trained_unless_told_otherwise(caplog, photos, typed, want, warned):
    with caplog.at_level(logging.INFO, logger="mask_cls"):
        chosen = crop_settings(TASK, typed, photos)
    assert {k: chosen[k] for k in want} == pytest.approx(want)
    assert ("its accuracy may drop" in caplog.text) == warned


def test_a_run_says_how_its_photos_were_framed_train_or_cv(tmp_path):
    photos = {"h_over_w": 1.0, "prepare": GOOD}
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "manifest.json").write_text(json.dumps({"data": {"photos": photos}}))
    (tmp_path / "cv" / "fold_0").mkdir(parents=True)
    (tmp_path / "cv" / "fold_0" / "manifest.json").write_text(json.dumps({"data": {"photos": photos}}))
    assert trained_on(tmp_path / "train") == trained_on(tmp_path / "cv") == photos
    assert trained_on(tmp_path / "train" / "checkpoints" / "best.ckpt") == photos
    assert trained_on(tmp_path / "nowhere") is None
