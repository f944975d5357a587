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
