"""Latency and throughput of an exported model: onnxruntime on ``model.onnx`` against PyTorch
eager on the same graph (uint8 in, 18 probabilities out, TTA inside), on the CPU, at batch 1
and batch 32, measured in the same run.

    python bench/export.py [--backbone efficientnet_b0] [--size 256 192] [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, report  # noqa: E402
from train_step import module_config  # noqa: E402

from mask_cls.export.graph import ExportGraph  # noqa: E402
from mask_cls.export.onnx_io import write_onnx  # noqa: E402
from mask_cls.module import MaskClassifier  # noqa: E402


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--backbone", default="efficientnet_b0")
    p.add_argument("--size", type=int, nargs=2, default=[256, 192])
    args = p.parse_args()
    backbone, size = ("mobilenetv3_small_050", [64, 48]) if args.quick else (args.backbone, args.size)
    repeats = 2 if args.quick else max(5, args.repeats)
    import onnxruntime as ort

    module = MaskClassifier(module_config(backbone) | {"image_size": size}).eval()
    graph = ExportGraph([module], [1.0], ["none", "hflip"])
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        write_onnx(graph, size, path, rng.integers(0, 256, (8, 3, *size), dtype=np.uint8))
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        title = (f"export: {backbone} at {size[0]}x{size[1]}, hflip TTA in the graph, onnxruntime {ort.__version__}, "
                 f"{torch.get_num_threads()} torch threads")
        for batch in (1, 32):
            x = rng.integers(0, 256, (batch, 3, *size), dtype=np.uint8)
            xt = torch.from_numpy(x)

            def eager(xt=xt) -> None:
                with torch.inference_mode():
                    graph(xt)

            def onnx(x=x) -> None:
                session.run(["probs"], {"images": x})

            t_pt, t_ort = median_seconds(eager, repeats), median_seconds(onnx, repeats)
            report(f"{title}; batch {batch} (ms per batch: PyTorch {1000 * t_pt:.1f}, onnxruntime {1000 * t_ort:.1f})",
                   [(f"PyTorch eager, batch {batch}", batch / t_pt), (f"onnxruntime, batch {batch}", batch / t_ort)],
                   "images/s", f"PyTorch eager, batch {batch}")


if __name__ == "__main__":
    main()
