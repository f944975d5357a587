"""Images/second of task=predict's path (mask_cls.inference.predict_paths, hflip TTA) against a
plain loop over the same checkpoint and images.

    python bench/predict.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, report, timed  # noqa: E402
from train_step import module_config  # noqa: E402

from mask_cls.checkpoint_io import load_checkpoint
from mask_cls.data import transforms  # noqa: E402
from mask_cls.data.datasets import ImageDataset, worker_init  # noqa: E402
from mask_cls.data.layouts.competition.tables import read_eval  # noqa: E402
from mask_cls.data.synthetic import SynthConfig, generate  # noqa: E402
from mask_cls.inference.predict import predict_paths  # noqa: E402
from mask_cls.models.preprocessor import normalize  # noqa: E402
from mask_cls.module import MaskClassifier  # noqa: E402


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--persons", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    quick = args.quick
    size = [64, 48] if quick else [256, 192]
    repeats = 1 if quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        generate(root, SynthConfig(train_persons=2, eval_persons=2 if quick else args.persons, image_size=(512, 384)),
                 progress=False)
        paths = list(read_eval(root)["image"])
        module = MaskClassifier(module_config("resnet10t" if quick else args.backbone) | {"image_size": size})
        trainer = pl.Trainer(logger=False, accelerator="cpu")
        trainer.strategy.connect(module)
        ckpt = Path(tmp) / "m.ckpt"
        trainer.save_checkpoint(ckpt)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

        def ours() -> int:
            predict_paths(load_checkpoint(str(ckpt)), paths, ["none", "hflip"], batch_size=32,
                          num_workers=args.workers, device=device)
            return len(paths)

        @torch.inference_mode()
        def plain() -> int:
            m = load_checkpoint(str(ckpt)).to(device)
            ds = ImageDataset(paths, None, transforms.build(size))
            for x, _ in DataLoader(ds, batch_size=32, num_workers=args.workers, worker_init_fn=worker_init):
                x = normalize(x.to(device), m.preprocess.mean, m.preprocess.std).contiguous(memory_format=torch.channels_last)
                _ = (m.net.probs(x) + m.net.probs(x.flip(-1))) / 2
            return len(paths)

        plain()
        # interleaved, the order alternating: a busy machine slows both arms alike
        rates: dict[str, list[float]] = {"plain": [], "ours": []}
        for i in range(repeats):
            for name in (("plain", "ours") if i % 2 == 0 else ("ours", "plain")):
                rates[name] += timed(plain if name == "plain" else ours, 1)[1]
        rows = [("plain loop over the checkpoint (hflip TTA)", statistics.median(rates["plain"])),
                ("mask_cls: task=predict path (hflip TTA)", statistics.median(rates["ours"]))]
    report(f"predict: {len(paths)} JPEGs 512x384 -> {size[0]}x{size[1]}, batch 32, {args.workers} workers",
           rows, "images/s", "plain loop over the checkpoint (hflip TTA)")


if __name__ == "__main__":
    main()
