"""``task=export run_dir=RUN``: the run's model(s) as ``model.onnx`` (checked against PyTorch with
onnxruntime at batch sizes 1, 7 and 32 on real images of the run's data), ``weights_<k>.safetensors``
with ``export.json`` (no pickle; ``Predictor.from_export`` loads them) and ``MODEL_CARD.md``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from omegaconf import DictConfig

from mask_cls.data import layouts
from mask_cls.errors import DataError
from mask_cls.rundir import log, plain, typed_overrides
from mask_cls.tasks import register
from mask_cls.tasks.predict import runs_and_weights

if TYPE_CHECKING:
    pass


def sample_images(layout: layouts.Layout, image_size, n: int = 32) -> tuple[np.ndarray, object]:
    """Up to ``n`` real images of the data as the model gets them (uint8 N x 3 x H x W), and the
    training table (None when it cannot be read here)."""
    from mask_cls.data import transforms
    from mask_cls.data.datasets import ImageDataset

    try:
        table = layout.read_train(check_images=False)
    except DataError as e:
        log.warning("the training table cannot be read (%s): the model card leaves its counts out", e)
        table = None
    info = layout.read_eval(check_images=False)
    paths = list(info["image"])[:n] if info is not None else (list(table["image"])[:n] if table is not None else [])
    if not paths:
        raise DataError(f"{layout.root}: no images to check the export on")
    ds = ImageDataset(paths, None, transforms.build(image_size), target_size=image_size)
    return np.stack([ds[i][0].numpy() for i in range(len(ds))]), table


def _commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True, text=True)
    return r.stdout.strip() or None


@register("export")
def export(cfg: DictConfig, out: Path) -> None:
    from mask_cls.export.card import write_card
    from mask_cls.export.graph import ExportGraph
    from mask_cls.export.onnx_io import write_onnx
    from mask_cls.export.weights import save
    from mask_cls.predictor import Predictor
    from mask_cls.run_config import run_files

    runs, run_weights = runs_and_weights(cfg)
    p = Predictor.from_run(runs, run_weights, tta=list(cfg.tta), allow_unsafe_checkpoint=cfg.get("allow_unsafe_checkpoint", False),
                           calibrate=bool(cfg.task.get("calibrate", True)))
    images, table = sample_images(layouts.open(cfg.data), p.image_size)
    graph = ExportGraph(p.modules, p.weights, p.tta)
    parity = write_onnx(graph, p.image_size, out / "model.onnx", images)
    from mask_cls.data.crop_rule import trained_on
    from mask_cls.data.images import INPUT_CONTRACT

    files = save(p.modules, p.weights, p.tta, out, {"runs": [str(r) for r in runs], "checkpoints": p.models,
                                                     "onnx": {"file": "model.onnx", **parity}, "input": INPUT_CONTRACT,
                                                     "photos": trained_on(runs[0])})
    folder = run_files(runs[0])
    overrides = []
    if folder is not None and (folder / "overrides.yaml").is_file():
        from mask_cls.runfiles import read_yaml

        loaded = read_yaml(folder / "overrides.yaml") or []
        overrides = [str(o) for o in loaded] if isinstance(loaded, list) else []
    card = write_card(out, [str(r) for r in runs], p.models, p.tta, p.image_size, table, plain(cfg.data),
                      " ".join(["python run.py", *typed_overrides()]) if typed_overrides() else " ".join(sys.argv),
                      overrides, _commit(), parity, any(bool(m.net.calibrated) for m in p.modules))
    log.info("exported %d model(s), tta=%s: %s, %s, %s -> %s", len(p.modules), p.tta, out / "model.onnx",
             ", ".join(files), card.name, out)
