"""GPU training throughput: EfficientNet-B3 at 384x288, batch 64 (where a GPU machine is lent).

Every row is the same hand-written training loop (SGD-Nesterov, random input), with the
precision flags it sets printed beside it: fp32 with TF32 off, fp32 as a user gets it by
default, bf16-mixed autocast + channels_last (the engine's settings), the same + torch.compile.
Prints images/second, peak memory, and the share of the card's measured bf16 matrix rate that
the model's training FLOPs reach. FLOPs are counted layer by layer from the shapes
(``bench/flops.py``: forward x 3; torch's FlopCounterMode counts depthwise backward as dense).

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
from flops import forward_macs, train_flops_per_image  # noqa: E402


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
    peak_rate = matmul_rate(device, n=512 if quick else 8192, iters=2 if quick else 20)
    print(f"\ngpu: {name} {h}x{w}, batch {batch}, {steps} steps, SGD-Nesterov\nmachine: {machine()}")
    print(f"measured bf16 matmul rate: {peak_rate / 1e12:.1f} TFLOP/s; training FLOPs per image: "
          f"{flops_per_image / 1e9:.2f} G (forward counted per layer, x 3)")
    print(f"{'variant (the same loop in every row)':<50}{'images/s':>10}{'ratio':>8}{'peak GiB':>10}{'of bf16 rate':>14}"
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
              f"  {flags}", flush=True)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = defaults
    if len(rates) == 4:
        print(f"compile over bf16 + channels_last: {rates[3] / rates[2]:.2f}x")

if __name__ == "__main__":
    main()
