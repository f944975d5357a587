"""How the training photos were framed, so that ``predict task.crop=face`` frames new photos the
same way: the rule ``task=prepare`` cropped with (``prepare.json`` beside the copy it made) and the
shape of the photos themselves (height / width, a median over a sample of file headers). A model
trained on tight square faces and shown 3:4 crops with a wide margin loses half its accuracy
(0.49 -> 0.25 on real framed photos).

Both are recorded in every training run's ``manifest.json`` (``data.photos``); ``prepare.json``
is read as data: size-capped, its values type- and range-checked, a bad one left out with a word.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("mask_cls")
#: what task=prepare's crop rule holds, each with the range a value must lie in
RANGES = {"margin": (0.0, 2.0), "aspect": (0.2, 5.0), "min_face": (0.01, 1.0)}
SAMPLE = 200  # training photos whose headers give the shape
NAME = "prepare.json"


def rule_of(record: dict[str, Any]) -> dict[str, Any]:
    """The crop rule ``task=prepare`` writes (detector, margin, aspect, min_face)."""
    return {k: record[k] for k in ("detector", "margin", "aspect", "min_face")}


def prepare_rule(root: str | Path | None) -> dict[str, Any] | None:
    """The crop rule of a ``task=prepare`` copy at ``root`` (its ``prepare.json``), or None."""
    from mask_cls.data.facecrop import DETECTORS
    from mask_cls.errors import ConfigError
    from mask_cls.runfiles import read_json

    path = Path(str(root)) / NAME if root else None
    if path is None or not path.is_file():
        return None
    try:
        found = read_json(path, 1_000_000)
    except ConfigError as e:
        log.warning("%s: not read (%s); the crop rule of the training photos is unknown", path, e)
        return None
    crop = found.get("crop") if isinstance(found, dict) else None
    if not isinstance(crop, dict):
        return None  # made before the rule was recorded
    bad = [k for k, (lo, hi) in RANGES.items()
           if isinstance(crop.get(k), bool) or not isinstance(crop.get(k), int | float) or not lo <= crop[k] <= hi]
    if crop.get("detector") not in DETECTORS:
        bad.append("detector")
    if bad:
        log.warning("%s: crop rule left out (%s not valid)", path, ", ".join(bad))
        return None
    return {"detector": str(crop["detector"]), **{k: float(crop[k]) for k in RANGES}}


def photo_shape(paths: Sequence[str]) -> float | None:
    """Median height / width of up to ``SAMPLE`` photos (evenly spaced), from their headers."""
    from mask_cls.data.images import header
    from mask_cls.errors import DataError

    if not len(paths):
        return None
    step = max(1, len(paths) // SAMPLE)
    ratios = []
    for p in list(paths)[::step][:SAMPLE]:
        try:
            w, h, _, _ = header(p)
        except (DataError, OSError):
            continue
        if w and h:
            ratios.append(h / w)
    if not ratios:
        return None
    ratios.sort()
    return round(ratios[len(ratios) // 2], 4)


def describe(root: str | Path | None, paths: Sequence[str]) -> dict[str, Any]:
    """``data.photos`` of a run's manifest: the photos' shape and the prepare rule (or None)."""
    return {"h_over_w": photo_shape(paths), "prepare": prepare_rule(root)}


def trained_on(run: str | Path) -> dict[str, Any] | None:
    """``data.photos`` of a train run or of a cv run's first fold (``manifest.json``), or None."""
    from mask_cls.errors import ConfigError
    from mask_cls.runfiles import read_json

    run = Path(str(run))
    if run.suffix == ".ckpt":
        run = run.parent.parent
    for where in (run / "manifest.json", run / "fold_0" / "manifest.json"):
        try:
            found = read_json(where, 5_000_000) if where.is_file() else None
        except ConfigError:
            continue
        photos = (found.get("data") or {}).get("photos") if isinstance(found, dict) else None
        if isinstance(photos, dict):
            return photos
    return None


def crop_settings(task: Any, typed: set[str], photos: dict[str, Any] | None) -> dict[str, Any]:
    """The crop ``predict task.crop=face`` uses: what the user typed, else the training data's rule
    (``task=prepare``'s), else the training photos' shape (aspect = width / height), else the
    task's defaults; a typed value that differs from how the model trained is warned about."""
    chosen = {k: task.get(k) for k in ("detector", "margin", "aspect", "min_face")}
    rule = (photos or {}).get("prepare") if isinstance((photos or {}).get("prepare"), dict) else None
    shape = (photos or {}).get("h_over_w")
    trained = dict(rule) if rule else ({"aspect": round(1 / float(shape), 4)}
                                       if isinstance(shape, int | float) and shape > 0 else {})
    source = "the training data's task=prepare rule" if rule else "the training photos' shape"
    for key, value in trained.items():
        if f"task.{key}" not in typed:
            chosen[key] = value
        elif _differs(chosen[key], value):
            log.warning("task.%s=%s, but the model trained on %s=%s (%s): its accuracy may drop; leave task.%s "
                        "out to crop as it trained", key, chosen[key], key, value, source, key)
    if trained and any(f"task.{k}" not in typed for k in trained):
        log.info("crop as the model trained (%s): %s", source,
                 ", ".join(f"{k} {chosen[k]}" for k in ("detector", "margin", "aspect", "min_face")))
    return chosen


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return not math.isclose(float(a), float(b), rel_tol=0.1)
    return a != b
