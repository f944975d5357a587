"""Training images/second through Lightning's Trainer.fit with the MaskClassifier module,
against a minimal hand-written PyTorch loop: same model, batch, optimiser and data (uint8
batches in memory, normalised on the device in both).

    python bench/train_step.py [--quick] [--backbone resnet18] [--steps 30]
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, report, timed  # noqa: E402

from mask_cls.models.preprocessor import normalize  # noqa: E402
from mask_cls.module import MaskClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def module_config(backbone: str) -> dict:
    """The module config of a linear-head CE model with ``backbone``, built from the option files."""
    from mask_cls.module_config import ModuleConfig

    conf = lambda g, n: OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / g / f"{n}.yaml"))  # noqa: E731
    model = conf("model", "timm") | {"backbone": backbone}
    run = {"model": model, "head": conf("head", "linear"), "loss": conf("loss", "ce"), "optim": conf("optim", "adamw"),
           "sched": conf("sched", "none")}
    return ModuleConfig.from_run_config(run).as_dict()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--backbone", default="resnet18")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--size", type=int, nargs=2, default=[128, 96])
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()
    steps = 3 if args.quick else args.steps
    repeats = 1 if args.quick else args.repeats
    backbone = "resnet10t" if args.quick else args.backbone
    h, w = (32, 24) if args.quick else args.size
    torch.manual_seed(0)
    x = torch.randint(0, 256, (steps * args.batch, 3, h, w), dtype=torch.uint8)
    y = torch.randint(0, 18, (steps * args.batch,))
    loader = DataLoader(TensorDataset(x, y), batch_size=args.batch, shuffle=False)

    def lightning_run() -> int:
        torch.manual_seed(0)
        module = MaskClassifier(module_config(backbone))
        trainer = pl.Trainer(max_epochs=1, accelerator="auto", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
        trainer.fit(module, loader)
        return steps * args.batch

    def hand_loop() -> int:
        torch.manual_seed(0)
        module = MaskClassifier(module_config(backbone))  # the same network and its init
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        net = module.net.to(device).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
        for xb, yb in loader:
            xb = normalize(xb.to(device), module.preprocess.mean, module.preprocess.std).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(net(xb)[0], yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return steps * args.batch

    hand_loop()  # warm-up: allocator, kernels
    rows = [("hand-written PyTorch loop", timed(hand_loop, repeats)[0]),
            ("mask_cls: Trainer.fit + MaskClassifier", timed(lightning_run, repeats)[0])]
    report(f"train step: {backbone} {h}x{w}, batch {args.batch}, {steps} steps, AdamW", rows,
           "images/s", "hand-written PyTorch loop")


if __name__ == "__main__":
    main()
