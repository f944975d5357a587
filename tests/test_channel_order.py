"""The Predictor's BGR check: a face whose forehead band is redder than blue is RGB; the same
array flipped is BGR; the margin is a limit (at it: not flagged, one past: flagged); several
arrays are judged by their median."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest

from mask_cls.data import channel_order as co
from tests.conftest import ROOT


def face(skin=(205, 150, 120), mask=(90, 140, 220), background=(40, 90, 200), h=64, w=48) -> np.ndarray:
    """An aligned face in RGB: a blue background, skin from the forehead down, a blue mask below."""
    img = np.empty((h, w, 3), np.uint8)
    img[:] = background
    img[int(0.1 * h):, int(0.15 * w):int(0.85 * w)] = skin
    img[int(0.55 * h):, int(0.15 * w):int(0.85 * w)] = mask  # a surgical mask: blue, below the band
    return img


def band(blue_minus_red: int, h=64, w=48) -> np.ndarray:
    img = np.full((h, w, 3), 120, np.uint8)
    img[..., 2] = 120 + blue_minus_red
    return img


def test_a_masked_face_on_blue_is_rgb_and_its_flip_is_bgr():
    rgb = face()
    assert not co.looks_bgr([rgb])[0]
    assert co.looks_bgr([rgb[..., ::-1]]) == (True, pytest.approx(85.0))  # 205 - 120


@pytest.mark.parametrize("margin, flagged", [(0, False), (int(co.MARGIN), False), (int(co.MARGIN) + 1, True), (-40, False)])
def test_the_margin_is_a_limit(margin, flagged):
    assert co.looks_bgr([band(margin)])[0] is flagged


@pytest.mark.parametrize("bgr_of_three, flagged", [(0, False), (1, False), (2, True), (3, True)])
def test_several_arrays_are_judged_by_their_median(bgr_of_three, flagged):
    arrays = [face()[..., ::-1] if i < bgr_of_three else face() for i in range(3)]
    random.Random(bgr_of_three).shuffle(arrays)  # the order the user passed them in does not matter
    assert co.looks_bgr(arrays)[0] is flagged


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 3, 3), (7, 5, 3), (480, 360, 3)])
def test_any_size_has_a_band(shape):
    img = np.zeros(shape, np.uint8)
    img[..., 2] = 200
    assert co.looks_bgr([img]) == (True, 200.0)
    assert co.looks_bgr([]) == (False, pytest.approx(float("nan"), nan_ok=True))


def test_the_benchmarks_rates_count_false_warnings_and_misses():
    sys.path.insert(0, str(ROOT / "bench"))
    import channel_order as bench

    margins = np.array([-30.0, -30.0, -30.0, 20.0, -10.0, -10.0])  # as given; flipped they change sign
    false, missed = bench.rates(margins, 1, random.Random(0))
    assert false == pytest.approx(1 / 6) and missed == pytest.approx(3 / 6)  # -10 flipped is +10: not above 15
    false, missed = bench.rates(margins, 3, random.Random(0))
    assert 0 <= false <= 1 and 0 <= missed <= 1


def test_one_very_blue_photo_does_not_outvote_two_rgb_ones():
    """The median, not the mean: a blue-lit photo among ordinary ones is not a BGR batch."""
    assert not co.looks_bgr([band(120), band(-10), band(-10)])[0]  # mean +33, median -10
    assert co.looks_bgr([band(120), band(20), band(-10)])[0]
