"""``model.onnx``: the export graph written with a dynamic batch axis and fixed H, W (timm warns
that TF-"same"-padded models must not get dynamic sizes), then checked against PyTorch with
onnxruntime on real images at several batch sizes before anyone relies on it."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mask_cls.errors import ConfigError

log = logging.getLogger("mask_cls")
OPSET = 17
#: fp32: the largest difference of a probability between onnxruntime and PyTorch that is accepted
TOLERANCE = 1e-4


def write_onnx(graph: torch.nn.Module, image_size: Sequence[int], path: Path, images: np.ndarray) -> dict:
    """The graph traced on a uint8 batch of 2 (any batch size runs), checked against PyTorch on
    ``images`` (:func:`parity`) before it is renamed into place: a refused export leaves no file."""
    from mask_cls.io import atomic_write

    h, w = int(image_size[0]), int(image_size[1])
    dummy = torch.zeros(2, 3, h, w, dtype=torch.uint8)

    checked: dict = {}

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's own deprecation notes
            torch.onnx.export(graph.eval(), (dummy,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=["images"], output_names=["probs"],
                              dynamic_axes={"images": {0: "batch"}, "probs": {0: "batch"}})
        checked.update(parity(graph, tmp, images, where=path))

    atomic_write(path, write)
    return checked


def parity(graph: torch.nn.Module, path: Path, images: np.ndarray, batch_sizes: Sequence[int] = (1, 7, 32),
           where: Path | None = None) -> dict:
    """onnxruntime against PyTorch on ``images`` (uint8 N x 3 x H x W) at each batch size: the
    largest absolute difference of a probability and the share of images whose class agrees.
    A difference above ``TOLERANCE`` is an error (the file is not what the model computes)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = []
    for b in batch_sizes:
        x = images[np.arange(b) % len(images)]  # repeat when there are fewer images than b
        with torch.no_grad():
            ref = graph.eval()(torch.from_numpy(x)).numpy()
        got = session.run(["probs"], {"images": x})[0]
        rows.append({"batch": b, "max_abs_diff": float(np.abs(got - ref).max()),
                     "argmax_agree": float((got.argmax(1) == ref.argmax(1)).mean())})
        log.info("parity at batch %d: max |onnxruntime - PyTorch| = %.2e, classes agree on %.1f%%", b,
                 rows[-1]["max_abs_diff"], 100 * rows[-1]["argmax_agree"])
    worst = max(r["max_abs_diff"] for r in rows)
    if worst > TOLERANCE:
        raise ConfigError(f"{where or path}: onnxruntime differs from PyTorch by {worst:.2e} (> {TOLERANCE:g}); "
                          "the export is refused")
    return {"opset": OPSET, "tolerance": TOLERANCE, "batches": rows}
