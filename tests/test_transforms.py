import cv2
import numpy as np
import pytest
import torch

from mask_cls.data import transforms
from mask_cls.data.datasets import ImageDataset
from mask_cls.errors import ConfigError
from mask_cls.models.preprocessor import normalize


def test_non_square_output_is_c_h_w_uint8(tmp_path):
    img = np.zeros((120, 90, 3), np.uint8)
    img[:, :, 2] = 255  # pure red in BGR
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), img)
    augs = [{"_target_": "albumentations.HorizontalFlip", "p": 1.0}]
    ds = ImageDataset([str(path)], [5], transforms.build([64, 48], augs))
    x, y = ds[0]
    assert x.shape == (3, 64, 48) and x.dtype == torch.uint8 and y == 5
    # RGB order (OpenCV decodes BGR): red is channel 0
    assert x[0].float().mean() > 250 and x[2].float().mean() < 5


def test_height_width_not_swapped(tmp_path):
    img = np.zeros((100, 100, 3), np.uint8)
    img[:50] = 255  # top half white
    path = tmp_path / "top.png"
    cv2.imwrite(str(path), img)
    x, _ = ImageDataset([str(path)], None, transforms.build([40, 20]))[0]
    assert x[:, :18].float().mean() > 250 and x[:, 22:].float().mean() < 5


def test_device_normalisation_matches_reference():
    x = torch.randint(0, 256, (2, 3, 8, 6), dtype=torch.uint8)
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    ref = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalize(x, mean, std), ref, atol=1e-5)


def test_bad_size():
    with pytest.raises(ConfigError, match="image_size"):
        transforms.build([64])


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(st.integers(8, 400), st.integers(8, 400), st.integers(8, 100), st.integers(8, 100))
def test_the_resize_is_bilinear_up_to_a_2x_shrink_and_by_area_beyond(src_h, src_w, h, w):
    img = np.random.default_rng(src_h * 1000 + src_w).integers(0, 256, (src_h, src_w, 3), dtype=np.uint8)
    out = transforms.build([h, w])(image=img)["image"]
    area = src_h > 2 * h or src_w > 2 * w  # exactly 2x: still bilinear
    expected = img if (src_h, src_w) == (h, w) else \
        cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if area else cv2.INTER_LINEAR)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize("src, area", [(128, False), (129, True)])  # 64 * 2 and one past it
def test_the_2x_limit(src, area):
    img = np.random.default_rng(0).integers(0, 256, (src, src, 3), dtype=np.uint8)
    out = transforms.build([64, 64])(image=img)["image"]
    mode = cv2.INTER_AREA if area else cv2.INTER_LINEAR
    assert np.array_equal(out, cv2.resize(img, (64, 64), interpolation=mode))


def test_a_4x_shrink_of_fine_stripes_does_not_alias():
    """Fine stripes (white, white, white, black, ...) shrunk 4x are their mean grey (area);
    bilinear reads only two neighbouring columns of every four, both white: a white image."""
    stripes = np.zeros((256, 256, 3), np.uint8)
    stripes[:, ::2] = 255
    stripes[:, 1::4] = 255  # columns 0, 1, 2 white, 3 black, and so on
    out = transforms.build([64, 64])(image=stripes)["image"].astype(float)
    assert out.std() < 1.0 and abs(out.mean() - stripes.mean()) < 1.0  # 191: three of four columns white
    linear = cv2.resize(stripes, (64, 64), interpolation=cv2.INTER_LINEAR).astype(float)
    assert linear.mean() - stripes.mean() > 50  # what the old resize gave: the black columns vanish


def test_the_cache_resizes_as_the_pipeline_does(tmp_path):
    """A cached image (training) and the same file through the pipeline (prediction) are the same
    array, also where the shrink is beyond 2x (a PNG is decoded at full size)."""
    from mask_cls.data.cache import ImageCache
    from mask_cls.data.images import read_rgb

    img = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    cached = ImageCache(tmp_path / "cache", [64, 48]).get(str(path))
    piped = transforms.build([64, 48])(image=read_rgb(path, (64, 48)))["image"]
    assert np.array_equal(cached, piped) and np.array_equal(piped, cv2.resize(img, (48, 64),
                                                                               interpolation=cv2.INTER_AREA))
