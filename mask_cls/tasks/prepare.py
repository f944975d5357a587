"""``task=prepare``: a face-cropped copy of a dataset in the same layout, in parallel, resumable.

Any layout of the seam: its training and eval images are cropped to the same place under
``task.out``, then its tables are written beside them (last, so a copy with tables is complete)."""

from __future__ import annotations

import os
from multiprocessing import get_context
from pathlib import Path

from omegaconf import DictConfig

from mask_cls.data import layouts
from mask_cls.data.facecrop import DETECTORS, crop_file
from mask_cls.errors import ConfigError
from mask_cls.evaluation.figures import crops_figure
from mask_cls.io import inside, write_csv, write_json
from mask_cls.progress import track
from mask_cls.rundir import log
from mask_cls.runfiles import read_json
from mask_cls.tasks import register


def _job(args) -> tuple[str, tuple | None]:
    src, dst, margin, aspect, min_face, detector = args
    return src, crop_file(src, dst, margin, aspect, min_face, detector)


def _done(src: Path, dst: Path) -> bool:
    return dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime


def boxes_table(hits: dict, root: Path):
    """``boxes.csv``: per image cropped in this run, its path relative to the data root and the face
    box (x, y, w, h in the original image's pixels) with the detector's score; empty when none."""
    import pandas as pd

    rows = [(str(Path(src).resolve().relative_to(root)), *(face[0] if face else ("",) * 4), face[1] if face else "")
            for src, face in sorted(hits.items())]
    return pd.DataFrame(rows, columns=["image", "x", "y", "w", "h", "score"])


def _spread(images: list, k: int = 6) -> list:
    """Up to ``k`` of ``images``, one per person folder first (six masks of one person show little)."""
    firsts = list({str(Path(i).parent): i for i in reversed(sorted(images))}.values())[::-1]
    chosen = sorted(firsts)[:k]
    return chosen + [i for i in sorted(images) if i not in chosen][: k - len(chosen)]


def _report(dest: Path, pairs: list, hits: dict, real: Path, skipped: int, detector: str,
            rule: dict | None = None) -> float:
    """boxes.csv, prepare.png (found faces first, then centre crops) and prepare.json; the rate."""
    found, cropped = sum(h is not None for h in hits.values()), len(hits)
    rate = found / cropped if cropped else float("nan")
    shown = f"{100 * found // cropped}%" if cropped else "n/a"  # floored: 279 of 280 is 99%, not 100%
    dst = {str(s): str(d) for s, d in pairs}
    write_csv(boxes_table(hits, real), dest / "boxes.csv")
    examples = _spread([s for s in hits if hits[s]]) + _spread([s for s in hits if not hits[s]])  # found, then not
    crops_figure([(s, dst[s], hits[s]) for s in examples], dest / "prepare.png",
                 f"face crops ({detector}): {found} of {cropped} found a face ({shown}); the rest centre-cropped")
    write_json({"images": len(pairs), "cropped": cropped, "skipped": skipped, "faces_found": found,
                "detection_rate": rate, "detector": detector, "crop": rule}, dest / "prepare.json")
    log.info("face crop: faces found in %d of %d cropped images (%.1f%%); the rest centre-cropped",
             found, cropped, 100 * rate if cropped else 0)
    return rate


@register("prepare")
def prepare(cfg: DictConfig, out: Path) -> float:
    layout = layouts.open(cfg.data)
    root = layout.root
    if root is None:
        raise ConfigError("task=prepare needs the dataset to copy: data.root=PATH (data=table: data.csv=FILE)")
    src_root = Path(root)
    dest = Path(cfg.task.out)
    if dest.resolve() == src_root.resolve():
        raise ConfigError(f"task.out={dest}: must differ from data.root")
    if dest.resolve().is_relative_to(src_root.resolve()):  # a copy inside the data would be read as data next time
        raise ConfigError(f"task.out={dest}: lies inside data.root={src_root}; choose a folder beside it")
    images = list(layout.read_train(check_images=False)["image"])
    info = layout.read_eval(check_images=False)
    images += [] if info is None else list(info["image"])
    # the readers keep every path inside data.root, so each output stays inside task.out
    real = src_root.resolve()
    pairs = [(Path(p), inside(dest, str(Path(p).resolve().relative_to(real)), "task.out")) for p in images]
    detector = str(cfg.task.get("detector", "yunet"))
    if detector not in DETECTORS:
        raise ConfigError(f"task.detector={detector!r}: choose {' or '.join(DETECTORS)}")
    todo = [(str(s), str(d), cfg.task.margin, cfg.task.aspect, cfg.task.min_face, detector)
            for s, d in pairs if not _done(s, d)]
    skipped = len(pairs) - len(todo)
    log.info("face crop (%s): %d images, %d already done, %d to crop -> %s", detector, len(pairs), skipped, len(todo),
             dest)
    workers = cfg.task.workers or os.cpu_count() or 1
    hits: dict = {}
    if todo:
        with get_context("fork").Pool(workers) as pool:
            for src, hit in track(pool.imap_unordered(_job, todo, chunksize=16), len(todo), "cropping faces", "images"):
                hits[src] = hit
    table = layout.copy_tables(dest)  # last: the copy is complete when it exists
    log.info("face-cropped copy: %s (train with data.%s=%s)", table, "csv" if "csv" in layout.options else "root",
             table if "csv" in layout.options else dest)
    previous = dest / "prepare.json"
    if not todo and previous.is_file():  # a re-run with nothing left to crop keeps the first figures
        log.info("face crop: every image was already cropped; %s kept as it was", previous)
        try:
            return float(read_json(previous).get("detection_rate", float("nan")))
        except (ValueError, AttributeError, TypeError, ConfigError):
            return float("nan")
    # the rule a model trained on this copy records, and predict task.crop=face applies (data/crop_rule.py)
    rule = {"detector": detector, "margin": float(cfg.task.margin), "aspect": float(cfg.task.aspect),
            "min_face": float(cfg.task.min_face)}
    return _report(dest, pairs, hits, real, skipped, detector, rule)
