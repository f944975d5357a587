"""``task=prepare``: a face-cropped copy of a dataset in the same layout, in parallel, resumable."""

from __future__ import annotations

import json
import os
import shutil
from multiprocessing import get_context
from pathlib import Path

from omegaconf import DictConfig
from rich.progress import track

from mask_cls.data import layout
from mask_cls.data.facecrop import crop_file
from mask_cls.errors import ConfigError
from mask_cls.io import inside, write_json
from mask_cls.tasks import register
from mask_cls.tasks.common import log


def _job(args) -> tuple[str, bool | None]:
    src, dst, margin, aspect, min_face = args
    return src, crop_file(src, dst, margin, aspect, min_face)


def _done(src: Path, dst: Path) -> bool:
    return dst.is_file() and dst.stat().st_mtime >= src.stat().st_mtime


@register("prepare")
def prepare(cfg: DictConfig) -> float:
    src_root, out = Path(cfg.data.root), Path(cfg.task.out)
    if out.resolve() == src_root.resolve():
        raise ConfigError(f"task.out={out}: must differ from data.root")
    images = list(layout.read_train(src_root, check_images=False)["image"])
    if layout.has_eval(src_root):
        images += list(layout.read_eval(src_root, check_images=False)["image"])
    # read_train / read_eval keep every path inside data.root, so each output stays inside task.out
    pairs = [(Path(p), inside(out, str(Path(p).relative_to(src_root)), "task.out")) for p in images]
    todo = [(str(s), str(d), cfg.task.margin, cfg.task.aspect, cfg.task.min_face) for s, d in pairs if not _done(s, d)]
    skipped = len(pairs) - len(todo)
    log.info("face crop: %d images, %d already done, %d to crop -> %s", len(pairs), skipped, len(todo), out)
    workers = cfg.task.workers or os.cpu_count() or 1
    found = 0
    if todo:
        with get_context("fork").Pool(workers) as pool:
            for _, hit in track(pool.imap_unordered(_job, todo, chunksize=16), total=len(todo), description="cropping faces"):
                found += bool(hit)
    for rel in ("train/train.csv", "eval/info.csv"):  # the tables last: the copy is complete when they exist
        if (src_root / rel).is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_root / rel, out / rel)
    previous = out / "prepare.json"
    if not todo and previous.is_file():  # a re-run with nothing left to crop keeps the first figures
        log.info("face crop: every image was already cropped; %s kept as it was", previous)
        try:
            return float(json.loads(previous.read_text()).get("detection_rate", float("nan")))
        except (ValueError, AttributeError):
            return float("nan")
    rate = found / len(todo) if todo else float("nan")
    write_json({"images": len(pairs), "cropped": len(todo), "skipped": skipped, "faces_found": found,
                "detection_rate": rate}, out / "prepare.json")
    log.info("face crop: faces found in %d of %d cropped images (%.1f%%); the rest centre-cropped",
             found, len(todo), 100 * rate if todo else 0)
    return rate
