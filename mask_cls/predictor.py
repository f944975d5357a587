"""A trained model for your own code or a notebook: ``Predictor.from_run(RUN).predict(images)``
(or ``Predictor.from_export(FOLDER)`` for a ``task=export`` folder).

A run (a train run, a cv run's fold models, several runs, or one ``.ckpt``) is loaded the way
``task=predict`` loads it (safe checkpoint reading, each run's best checkpoint) and predicts the
same way (the training's preprocessing on the device, the run's TTA views averaged, the models'
probabilities soft-voted with a run's weight shared by its folds): for image files the numbers
are ``task=predict``'s (its ``probs.csv``). Images are paths or RGB ``uint8`` arrays (H, W, 3).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mask_cls import labels as L
from mask_cls.errors import ConfigError

log = logging.getLogger("mask_cls")

if TYPE_CHECKING:
    import torch

    from mask_cls.module import MaskClassifier


@dataclass(frozen=True)
class Prediction:
    """One image's answer: the class (0..17), its three task names, and the 18 probabilities."""

    label: int
    mask: str
    gender: str
    age: str
    probs: np.ndarray

    @classmethod
    def of(cls, probs: np.ndarray) -> Prediction:
        label = int(np.argmax(probs))
        m, g, a = L.decode(label)
        return cls(label, L.MASK_NAMES[m], L.GENDER_NAMES[g], L.AGE_NAMES[a], probs)


def _run_tta(run: Path) -> list[str] | None:
    """The run's recorded ``tta`` (read as data from ``.hydra/config.yaml``), if it has one."""
    from mask_cls.run_config import saved_config

    found = saved_config(run) if run.is_dir() else None
    if found is None:
        return None
    where, content = found
    tta = content.get("tta")
    if tta is not None and not (isinstance(tta, list) and all(isinstance(v, str) for v in tta)):
        raise ConfigError(f"{where}: tta is not a list of view names")
    return tta


class Predictor:
    """Models with their weights, TTA views, input size and device, ready to predict."""

    def __init__(self, modules: Sequence[MaskClassifier], weights: Sequence[float], tta: Sequence[str],
                 device: str | torch.device = "auto", batch_size: int = 64, num_workers: int = 0,
                 models: Sequence[str] = (), crop: dict[str, Any] | None = None):
        from mask_cls.inference.predict import pick_device
        from mask_cls.inference.tta import check_views

        if not modules or len(modules) != len(weights):
            raise ValueError(f"{len(modules)} models and {len(weights)} weights")
        sizes = {tuple(m.config.image_size or ()) for m in modules}
        if len(sizes) != 1 or () in sizes:
            raise ConfigError(f"the models' input sizes differ or are unknown: {sorted(sizes)}")
        self.modules, self.weights, self.tta = list(modules), list(weights), check_views(tta)
        self.image_size = list(sizes.pop())
        self.device = pick_device(device) if isinstance(device, str) else device
        self.batch_size, self.num_workers, self.models = batch_size, num_workers, list(models)
        self.crop = crop  # None: whole images; else the face crop (detector, margin, aspect, min_face)

    @classmethod
    def from_run(cls, run: str | Path | Sequence[str | Path], weights: Sequence[float] | None = None,
                 tta: Sequence[str] | None = None, allow_unsafe_checkpoint: bool = False, calibrate: bool = True,
                 crop: str | dict[str, Any] = "none", **kwargs: Any) -> Predictor:
        """A train run, a cv run (its folds), a ``.ckpt``, or a list of them (``weights``: one per
        run, default equal). ``tta``: default the first run's own, else ``[none, hflip]``.
        ``calibrate``: each run's temperatures (``calibration.json``), as ``task=predict`` applies them.
        ``crop="face"``: find each image's face and crop it as the first run's training photos were
        framed (as ``task=predict task.crop=face``); a dict (``{"margin": 0.05}``) sets keys of it."""
        from mask_cls.inference.runs import load_model, run_checkpoints

        runs = [Path(run)] if isinstance(run, str | Path) else [Path(r) for r in run]
        weights = list(weights) if weights is not None else [1.0] * len(runs)
        if len(weights) != len(runs):
            raise ConfigError(f"{len(weights)} weights for {len(runs)} runs")
        found = [(run_checkpoints(r), w) for r, w in zip(runs, weights)]  # every run found before loading
        modules, model_weights, models = [], [], []
        for ckpts, w in found:
            for ckpt in ckpts:
                modules.append(load_model(ckpt, allow_unsafe_checkpoint, calibrate))
                model_weights.append(w / len(ckpts))
                models.append(str(ckpt))
        views = tta if tta is not None else (_run_tta(runs[0]) or ["none", "hflip"])
        return cls(modules, model_weights, views, models=models, crop=_crop(crop, runs[0]), **kwargs)

    @classmethod
    def from_export(cls, folder: str | Path, tta: Sequence[str] | None = None, **kwargs: Any) -> Predictor:
        """The models of a ``task=export`` folder (``export.json`` + ``weights_<k>.safetensors``:
        no pickle, configs checked as a checkpoint's are), with the export's TTA unless given."""
        from mask_cls.export.weights import load

        modules, weights, views = load(folder)
        return cls(modules, weights, tta if tta is not None else views, models=[str(folder)], **kwargs)

    def predict_probs(self, images: Sequence[Any]) -> np.ndarray:
        """(N, 18) probabilities, in the order given: image paths, RGB ``uint8`` arrays (H, W, 3;
        an array from ``cv2.imread`` is BGR: convert it first) or PIL images."""
        from mask_cls.inference.ensemble import soft_vote
        from mask_cls.inference.predict import predict_paths

        items = [_as_input(a, i) for i, a in enumerate(images)]
        arrays = {f"<array {i}>": a for i, a in enumerate(items) if isinstance(a, np.ndarray)}
        for key, a in arrays.items():
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
                raise ValueError(f"image {key}: expected an RGB uint8 array (H, W, 3), got {a.dtype} {a.shape}")
        _warn_if_bgr(arrays)
        keys = [f"<array {i}>" if isinstance(a, np.ndarray) else str(a) for i, a in enumerate(items)]

        target = (int(self.image_size[0]), int(self.image_size[1]))

        def read(key: str) -> np.ndarray:
            from mask_cls.data.images import read_rgb, reduce_array

            if self.crop is not None:  # the face found at full resolution, then shrunk as an array is
                return reduce_array(_face(arrays[key] if key in arrays else read_rgb(key), self.crop), target)
            return reduce_array(arrays[key], target) if key in arrays else read_rgb(key, target=target)

        probs = [predict_paths(m, keys, self.tta, self.image_size, self.batch_size, self.num_workers, self.device,
                               read=read if arrays or self.crop is not None else None) for m in self.modules]
        return soft_vote(probs, self.weights).astype(np.float32)

    def predict(self, images: Sequence[Any]) -> list[Prediction]:
        """Per image: the class, its mask / gender / age names and the 18 probabilities."""
        return [Prediction.of(p) for p in self.predict_probs(images)]


def _warn_if_bgr(arrays: dict[str, np.ndarray]) -> None:
    """One warning when the arrays look like OpenCV's BGR (data/channel_order.py): taken as RGB
    they would be predicted as blue-skinned faces, with no error."""
    from mask_cls.data.channel_order import looks_bgr

    bgr, margin = looks_bgr(arrays.values())
    if bgr:
        log.warning(f"the {len(arrays)} array(s) look BGR, not RGB: blue exceeds red by {margin:.0f} grey levels "
                    "across the forehead, where skin is redder; an array from cv2.imread needs "
                    "cv2.cvtColor(img, cv2.COLOR_BGR2RGB) (predicted as given)")


def _as_input(image: Any, i: int) -> str | Path | np.ndarray:
    """A path or an array as the reader takes it; a PIL image as its RGB array; else one line."""
    if isinstance(image, str | Path | np.ndarray):
        return image
    from PIL import Image  # a dependency of torchvision and albumentations

    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    raise TypeError(f"image {i}: a Predictor takes image paths, RGB uint8 arrays (H, W, 3) or PIL images, "
                    f"not {type(image).__name__}")


#: the crop of ``task=predict``'s defaults (conf/task/predict.yaml), before the training rule applies
CROP_DEFAULTS = {"detector": "yunet", "margin": 0.3, "aspect": 0.75, "min_face": 0.15}


def _crop(crop: str | dict[str, Any], run: Path) -> dict[str, Any] | None:
    """``crop`` as the face-crop settings (``data.crop_rule.crop_settings``), or None for none."""
    from mask_cls.data.crop_rule import crop_settings, trained_on

    if crop == "none":
        return None
    given = dict(crop) if isinstance(crop, dict) else {}
    if crop != "face" and not isinstance(crop, dict) or set(given) - set(CROP_DEFAULTS):
        raise ConfigError(f"crop={crop!r}: 'none', 'face', or a dict of {', '.join(CROP_DEFAULTS)}")
    return crop_settings(CROP_DEFAULTS | given, {f"task.{k}" for k in given}, trained_on(run))


def _face(rgb: np.ndarray, crop: dict[str, Any]) -> np.ndarray:
    """The face crop of an RGB image, as ``task=predict task.crop=face`` makes it."""
    import cv2

    from mask_cls.data.facecrop import crop_box, face_box

    face = face_box(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), crop["min_face"], crop["detector"])
    x0, y0, x1, y1 = crop_box(rgb.shape[:2], face[0] if face else None, crop["margin"], crop["aspect"])
    return np.ascontiguousarray(rgb[y0:y1, x0:x1])
