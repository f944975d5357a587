"""``make gpu-check``: the CUDA path end to end, in one script (a few minutes on one GPU).

1. ``experiment=demo`` on the GPU with bf16-mixed, channels_last and ``engine.compile=true``
2. the same with 16-mixed (fp16 autocast + gradient scaling)
3. ``task=predict`` from run 1 (eval set, hflip TTA)
4. host-device synchronisations per training step inside ``Trainer.fit`` with the
   ``MaskClassifier`` module (``torch.cuda.set_sync_debug_mode``: every synchronising call
   after the warm-up steps is counted, with where it came from)
5. ``bench/gpu.py``: EfficientNet-B3 384x288, fp32 TF32 off vs fp32 defaults vs bf16 + channels_last vs + compile

Prints one summary table at the end. Without a GPU (or with ``--quick``) every step runs tiny on
the CPU, which only checks that the script works (the test suite does that).

    python bench/gpu_check.py [--epochs 3] [--quick] [--out outputs/gpu_check]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sh(args: list[str], log: Path) -> tuple[int, float]:
    """Run ``args`` from the repository root, output to ``log``; (return code, seconds)."""
    t = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(args, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc:
        print(f"--- {log} (last lines) ---\n" + "".join(open(log).readlines()[-25:]))
    return rc, time.perf_counter() - t


def metric(run: Path, key: str = "val/f1_best") -> float:
    try:
        return float(json.loads((run / "metrics.json").read_text()).get(key, float("nan")))
    except (OSError, ValueError):
        return float("nan")


def count_syncs(quick: bool, steps: int = 30, warmup: int = 10) -> tuple[int, int, list[str]]:
    """Synchronising CUDA calls in ``steps`` training steps after ``warmup`` (Trainer.fit, bf16,
    channels_last, AdamW + cosine, the module's own logging); (syncs, steps, top sources)."""
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    sys.path.insert(0, str(ROOT / "bench"))
    from train_step import module_config

    from mask_cls.module import MaskClassifier

    cuda = torch.cuda.is_available() and not quick
    seen: list[str] = []

    class SyncProbe(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == warmup and cuda:
                torch.cuda.synchronize()
                torch.cuda.set_sync_debug_mode("warn")

        def on_train_epoch_end(self, trainer, module):
            if cuda:
                torch.cuda.set_sync_debug_mode("default")

    n = (warmup + steps) * 32
    x = torch.randint(0, 256, (n, 3, 96, 72), dtype=torch.uint8)
    loader = DataLoader(TensorDataset(x, torch.randint(0, 18, (n,))), batch_size=32, pin_memory=cuda)
    cfg = module_config("mobilenetv3_small_100" if not quick else "resnet10t")
    cfg["sched"] = {"_target_": "mask_cls.lr_schedules.cosine", "warmup_epochs": 0}
    module = MaskClassifier(cfg)
    trainer = pl.Trainer(max_epochs=1, accelerator="gpu" if cuda else "cpu", devices=1, logger=False,
                         precision="bf16-mixed" if cuda else "32-true", enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[SyncProbe()], log_every_n_steps=10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, loader)
    for w in caught:
        if "synchronizing" in str(w.message).lower():
            seen.append(f"{Path(w.filename).name}:{w.lineno}")
    top = [f"{k} x{v}" for k, v in collections.Counter(seen).most_common(5)]
    return len(seen), steps, top


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny, on the CPU: only checks that the script runs")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "outputs" / "gpu_check" / time.strftime("%Y-%m-%d_%H-%M-%S")))
    args = p.parse_args()
    cuda = torch.cuda.is_available() and not args.quick
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    data = out / "data"
    if cuda:
        size = [f"data.root={data}", f"trainer.max_epochs={args.epochs}", "data.num_workers=8", "trainer=gpu"]
    else:
        size = [f"data.root={data}", "trainer.max_epochs=1", "data.num_workers=0", "trainer.accelerator=cpu",
                "synth.train_persons=12", "synth.eval_persons=4", "data.n_folds=3", "data.batch_size=8",
                "model.backbone=resnet10t", "data.image_size=[48,36]", "synth.image_size=[64,48]"]
    rows: list[tuple[str, str, str]] = []
    precision = ("bf16-mixed", "16-mixed") if cuda else ("32-true", "32-true")
    compile_ = [f"engine.compile={str(cuda).lower()}"]  # compiling on the CPU takes minutes
    demos = (("demo bf16-mixed + channels_last + compile", "bf16", precision[0], compile_),
             ("demo 16-mixed + channels_last", "fp16", precision[1], []))
    for name, run_name, prec, extra in demos if cuda else demos[:1]:  # on the CPU both would be 32-bit
        run = out / run_name
        rc, secs = sh([py, "run.py", "experiment=demo", *size, f"trainer.precision={prec}", "model.channels_last=true",
                       *extra, f"hydra.run.dir={run}"], out / f"{run.name}.log")
        rows.append((name, "ok" if rc == 0 else f"FAILED (rc {rc})",
                     f"val/f1_best {metric(run):.4f}, {secs:.0f} s (incl. start-up)"))
    first = out / "bf16"
    rc, secs = sh([py, "run.py", "task=predict", f"run_dir={first}", f"data.root={data}",
                   *[s for s in size if s.startswith(("data.num_workers", "trainer"))],
                   f"hydra.run.dir={out / 'predict'}"], out / "predict.log")
    same = (out / "predict" / "submission.csv").is_file() and (first / "submission.csv").is_file() and \
        (out / "predict" / "submission.csv").read_text() == (first / "submission.csv").read_text()
    rows.append(("task=predict from the bf16 run", "ok" if rc == 0 else f"FAILED (rc {rc})",
                 f"{secs:.0f} s; submission identical to the run's own: {same}"))
    syncs, steps, top = count_syncs(not cuda, *((30, 10) if cuda else (2, 1)))  # on the CPU: only that it runs
    rows.append(("host-device syncs in Trainer.fit steps", ("ok" if syncs == 0 else "SYNCS") if cuda else "skipped",
                 f"{syncs} in {steps} steps" + (f" ({'; '.join(top)})" if top else "") if cuda else "needs CUDA"))
    rc, _ = sh([py, "bench/gpu.py", *(["--quick"] if not cuda else ["--steps", "15"])], out / "gpu_bench.log")
    rows.append(("bench/gpu.py", "ok" if rc == 0 else f"FAILED (rc {rc})", "table below"))
    print(f"\ngpu-check: {torch.cuda.get_device_name() if cuda else 'no GPU (CPU fallback)'}, "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}; logs in {out}")
    for name, status, detail in rows:
        print(f"  {name:<44}{status:<12}{detail}")
    print("".join(open(out / "gpu_bench.log").readlines()[-8:]))
    failed = [r for r in rows if r[1].startswith("FAILED")]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    main()
