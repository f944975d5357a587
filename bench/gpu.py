"""GPU training throughput: EfficientNet-B3 at 384x288, batch 64 (where a GPU machine is lent).

The ``loop:`` rows are the same hand-written training loop (SGD-Nesterov, random input), with
the precision flags each sets printed beside it: fp32 with TF32 off, fp32 as a user gets it by
default, bf16-mixed autocast + channels_last (the engine's settings), the same + torch.compile.
The ``mask_cls:`` row is ``Trainer.fit`` with ``MaskClassifier`` on the same batch (uint8,
normalised on the device). Prints images/second, peak memory, the share of the card's measured
bf16 matrix rate that the model's training FLOPs reach (counted layer by layer from the shapes,
``bench/flops.py``: forward x 3; torch's FlopCounterMode counts depthwise backward as dense), and
the memory view: the estimated bytes a training image moves times images/s, as GB/s and as a
share of the card's measured copy bandwidth (an estimate: every layer's input and output, x 3).

    python bench/gpu.py [--no-compile] [--steps 30]
    python bench/gpu.py --flops-only   # GFLOP per training image of the benchmark's model, on a CPU
    python bench/gpu.py --quick        # tiny, on CPU if there is no GPU: only checks it runs
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402
from flops import activation_bytes, forward_macs, train_flops_per_image  # noqa: E402


def matmul_rate(device: torch.device, dtype=torch.bfloat16, n: int = 8192, iters: int = 20) -> float:
    """Measured dense matmul FLOP/s of the device in ``dtype``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(device)
    return 2 * n**3 * iters / (time.perf_counter() - t)


def copy_bandwidth(device: torch.device, mib: int = 1024, iters: int = 10) -> float:
    """Measured bytes/s of a device-to-device copy (read + write counted)."""
    a = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    sync(device)
    t = time.perf_counter()
    for _ in range(iters):
        b.copy_(a)
    sync(device)
    return 2 * a.numel() * iters / (time.perf_counter() - t)


def fit_rate(name: str, x: torch.Tensor, y: torch.Tensor, steps: int, device: torch.device) -> tuple[float, float]:
    """``Trainer.fit`` with ``MaskClassifier`` (the engine's bf16-mixed + channels_last on a GPU,
    fp32 on a CPU) on the same batch, as uint8 images normalised on the device: images/s over
    ``steps`` steps after 3 warm-up steps, and peak GiB."""
    import lightning.pytorch as pl
    from omegaconf import OmegaConf
    from torch.utils.data import DataLoader, TensorDataset

    from mask_cls.console import quiet
    from mask_cls.module import MaskClassifier
    from mask_cls.module_config import ModuleConfig

    def conf(group: str, name: str) -> dict:
        return OmegaConf.to_container(OmegaConf.load(Path(__file__).resolve().parents[1] / "conf" / group / f"{name}.yaml"))

    quiet()  # Lightning's notes nobody can act on
    gpu = device.type == "cuda"
    model = conf("model", "timm") | {"backbone": name, "channels_last": gpu}
    module = MaskClassifier(ModuleConfig.from_run_config(
        {"model": model, "head": conf("head", "linear"), "loss": conf("loss", "ce"), "optim": conf("optim", "sgd"),
         "sched": conf("sched", "none"), "data": {"image_size": list(x.shape[-2:])}}))
    images = ((x - x.min()) / (x.max() - x.min()) * 255).to(torch.uint8).cpu()
    data = DataLoader(TensorDataset(images, y.cpu()), batch_size=len(x), shuffle=False)
    times: dict[str, float] = {}

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == 3:
                sync(device)
                times["start"] = time.perf_counter()

        def on_train_end(self, trainer, pl_module):
            sync(device)
            times["end"] = time.perf_counter()

    if gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer = pl.Trainer(max_steps=3 + steps, accelerator=device.type, devices=1, precision="bf16-mixed" if gpu else "32",
                         logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Clock()], limit_val_batches=0)
    trainer.fit(module, train_dataloaders=_repeat(data, 3 + steps))
    rate = steps * len(x) / (times["end"] - times["start"])
    return rate, (torch.cuda.max_memory_allocated() / 2**30 if gpu else float("nan"))


def _repeat(loader, n: int):
    """A loader that yields its one batch ``n`` times (the same synthetic batch every step)."""
    from torch.utils.data import DataLoader, TensorDataset

    x, y = next(iter(loader))
    return DataLoader(TensorDataset(x.repeat(n, 1, 1, 1), y.repeat(n)), batch_size=len(x), shuffle=False)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def tf32(allow: bool | None) -> str:
    """Set TF32 for matmuls and cuDNN convolutions (None: leave PyTorch's defaults), and say what is set."""
    if allow is not None:
        torch.backends.cuda.matmul.allow_tf32 = allow
        torch.backends.cudnn.allow_tf32 = allow
    return (f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}, "
            f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}")


def run(model, x, y, steps: int, amp: bool, channels_last: bool, device: torch.device) -> tuple[float, float]:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    rate = steps * len(x) / (time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return rate, peak


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--no-compile", action="store_true", help="leave out the torch.compile row")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--backbone", default="efficientnet_b3")
    p.add_argument("--flops-only", action="store_true", help="print the FLOPs per training image and stop")
    args = p.parse_args()
    if args.flops_only:
        model = timm.create_model(args.backbone, num_classes=18).eval()
        x = torch.randn(1, 3, 384, 288)
        macs = forward_macs(model, x)
        print(f"{args.backbone} 384x288: forward {2 * macs / 1e9:.2f} GFLOP ({macs / 1e9:.2f} GMAC) per image, "
              f"training {train_flops_per_image(model, x) / 1e9:.2f} GFLOP per image (forward x 3)")
        return
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    quick = args.quick or device.type == "cpu"
    name, batch, (h, w), steps = (("resnet10t", 4, (64, 48), 2) if quick else (args.backbone, 64, (384, 288), args.steps))
    torch.manual_seed(0)
    x = torch.randn(batch, 3, h, w, device=device)
    y = torch.randint(0, 18, (batch,), device=device)

    def fresh():
        torch.manual_seed(0)
        return timm.create_model(name, num_classes=18).to(device).train()

    flops_per_image = train_flops_per_image(fresh(), x)
    bytes_per_image = activation_bytes(fresh(), x, 2 if device.type == "cuda" else 4)
    peak_rate = matmul_rate(device, n=512 if quick else 8192, iters=2 if quick else 20)
    copy_rate = copy_bandwidth(device, mib=16 if quick else 1024, iters=2 if quick else 10)
    print(f"\ngpu: {name} {h}x{w}, batch {batch}, {steps} steps, SGD-Nesterov\nmachine: {machine()}")
    print(f"measured bf16 matmul rate: {peak_rate / 1e12:.1f} TFLOP/s; training FLOPs per image: "
          f"{flops_per_image / 1e9:.2f} G (forward counted per layer, x 3)")
    print(f"measured copy bandwidth: {copy_rate / 1e9:.1f} GB/s; memory traffic per training image (estimate: every "
          f"layer's input and output, x 3, 16-bit on a GPU): {bytes_per_image / 1e9:.3f} GB")
    print(f"{'variant':<50}{'images/s':>10}{'ratio':>8}{'peak GiB':>10}{'of bf16 rate':>14}{'GB/s':>8}{'of copy bw':>12}"
          "  flags", flush=True)
    defaults = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    variants = [("loop: fp32, TF32 off, eager, NCHW", False, False, False, False),
                ("loop: fp32 as PyTorch's defaults, eager, NCHW", False, False, False, None),
                ("loop: bf16-mixed + channels_last", True, True, False, None)]
    if not args.no_compile and not quick:  # compiling on the CPU takes minutes: GPU only
        variants.append(("loop: bf16-mixed + channels_last + compile", True, True, True, None))
    rates = []
    for label, amp, channels_last, compile_, allow in variants:  # each row printed when measured
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = defaults
        flags = tf32(allow) + (", autocast bf16" if amp else "") + (", channels_last" if channels_last else "") + \
            (", torch.compile" if compile_ else "")
        model = fresh()
        if compile_:
            model.compile()
        rate, peak = run(model, x, y, steps, amp, channels_last, device)
        rates.append(rate)
        print(f"{label:<50}{rate:>10.1f}{rate / rates[0]:>7.2f}x{peak:>10.2f}{rate * flops_per_image / peak_rate:>13.1%}"
              f"{rate * bytes_per_image / 1e9:>8.1f}{rate * bytes_per_image / copy_rate:>11.1%}  {flags}", flush=True)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = defaults
    rate, peak = fit_rate(name, x, y, steps, device)  # mask_cls itself: the engine's precision and layout
    label = "mask_cls: Trainer.fit + MaskClassifier" + (" (bf16, channels_last)" if device.type == "cuda" else " (fp32)")
    print(f"{label:<50}{rate:>10.1f}{rate / rates[0]:>7.2f}x{peak:>10.2f}{rate * flops_per_image / peak_rate:>13.1%}"
          f"{rate * bytes_per_image / 1e9:>8.1f}{rate * bytes_per_image / copy_rate:>11.1%}  SGD + linear head + CE, "
          "uint8 batches normalised on the device", flush=True)
    if len(rates) == 4:
        print(f"compile over bf16 + channels_last: {rates[3] / rates[2]:.2f}x")

if __name__ == "__main__":
    main()
