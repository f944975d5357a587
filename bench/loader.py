"""Images/second delivered by the training loader on real-size (512x384) JPEGs.

Baseline: the original solution's style, cv2.imread + albumentations + float normalisation
in the worker. Ours: uint8 tensors from the workers (normalised later on the device), with
the image cache off and on (on: the pass after the cache is warm). Same augmentation preset
(augment=light), same image size, batch and worker count.

    python bench/loader.py [--quick] [--workers 2] [--persons 60]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import albumentations as A
import cv2
import torch
from albumentations.pytorch import ToTensorV2
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, report, timed  # noqa: E402

from mask_cls.data import transforms  # noqa: E402
from mask_cls.data.cache import ImageCache  # noqa: E402
from mask_cls.data.datasets import ImageDataset, worker_init  # noqa: E402
from mask_cls.data.layouts.competition.tables import read_train  # noqa: E402
from mask_cls.data.synthetic import SynthConfig, generate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class OriginalStyle(Dataset):
    """Decode, augment and normalise to float32 in the worker, as the original solution did."""

    def __init__(self, paths, labels, tf):
        self.paths, self.labels, self.tf = list(paths), list(labels), tf

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        img = cv2.cvtColor(cv2.imread(self.paths[i]), cv2.COLOR_BGR2RGB)
        return self.tf(image=img)["image"], self.labels[i]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--persons", type=int, default=100)
    p.add_argument("--size", type=int, nargs=2, default=[256, 192], help="training H W")
    args = p.parse_args()
    persons = 4 if args.quick else args.persons
    repeats = 1 if args.quick else args.repeats
    augs = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "augment" / "light.yaml"))["train"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        generate(root, SynthConfig(train_persons=persons, eval_persons=0, image_size=(512, 384), seed=0), progress=False)
        table = read_train(root, check_images=False)
        paths, labels = table["image"], table["label"]
        h, w = args.size
        loader_kw = dict(batch_size=32, num_workers=args.workers, worker_init_fn=worker_init, shuffle=True,
                         persistent_workers=args.workers > 0)

        original_tf = A.Compose([A.Resize(h, w), *[instantiate(a) for a in augs],
                                 A.Normalize(), ToTensorV2()])
        cache = ImageCache(Path(tmp) / "cache", (h, w))
        variants = {
            "original: imread + augment + float in worker": OriginalStyle(paths, labels, original_tf),
            "mask_cls: uint8, cache off": ImageDataset(paths, labels, transforms.build([h, w], augs)),
            "mask_cls: uint8, cache on (warm)": ImageDataset(paths, labels, transforms.build([h, w], augs), cache),
        }
        for i in range(len(paths)):  # warm the cache: the first epoch of a run, or an earlier run
            cache.get(paths[i])

        def one_pass(loader):
            def run():
                n = 0
                for x, _ in loader:
                    assert isinstance(x, torch.Tensor)
                    n += len(x)
                return n
            return run

        rows = []
        for name, ds in variants.items():  # steady state: workers started, one epoch done
            loader = DataLoader(ds, **loader_kw)
            one_pass(loader)()
            rows.append((name, timed(one_pass(loader), repeats)[0]))
            del loader
    report(f"loader: {len(paths)} JPEGs 512x384 -> {h}x{w}, augment=light, batch 32, {args.workers} workers",
           rows, "images/s", "original: imread + augment + float in worker")


if __name__ == "__main__":
    main()
