"""The first second of every task, against ``python -c "import pandas"`` (the baseline, measured
in the same run): seconds to the first line a command prints, and to its error on a mistake.

Mistakes (a wrong data root, a misspelt key, a misspelt backbone, a folder that is no run) are
reported before PyTorch, Lightning or timm load; a good run prints its first line (what it is
about to do) just as early and then goes on (it is stopped once that line has come).

    python bench/startup.py [--quick] [--repeats 5]
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], cwd: str, wait: float = 2) -> tuple[float, float | None]:
    """(seconds to the first byte of output, seconds to the end or None when stopped after it:
    a command still going ``wait`` seconds after its first byte is a run, not a mistake)."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "WANDB_MODE": "disabled"}, start_new_session=True)
    proc.stdout.read(1)
    first = time.perf_counter() - t
    try:
        proc.wait(timeout=wait)
        end = time.perf_counter() - t
    except subprocess.TimeoutExpired:  # a good run goes on training: its first line is what counts
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        end = None
    proc.stdout.close()
    return first, end


def cases(tmp: Path, data: Path, run: Path) -> dict[str, list[str]]:
    missing = tmp / "nowhere"
    return {
        "train, wrong data root": ["data=mask", f"data.root={missing}"],
        "train, misspelt key (trainer.max_epoch)": ["trainer.max_epoch=3"],
        "train, misspelt backbone (resnet10)": ["data=mask", f"data.root={data}", "model.backbone=resnet10"],
        "train, right path (first line)": ["data=mask", f"data.root={data}", "model.backbone=resnet10t"],
        "cv, wrong data root": ["task=cv", "data=mask", f"data.root={missing}"],
        "cv, right path (first line)": ["task=cv", "data=mask", f"data.root={data}", "model.backbone=resnet10t"],
        "preview, wrong data root": ["task=preview", "data=mask", f"data.root={missing}"],
        "preview, right path (first line)": ["task=preview", "data=mask", f"data.root={data}"],
        "predict, folder that is no run": ["task=predict", f"run_dir={tmp}", "data=mask", f"data.root={data}"],
        "predict, right run (first line)": ["task=predict", f"run_dir={run}"],
        "pseudo, wrong run_dir": ["task=pseudo", f"run_dir={missing}"],
        "pseudo, right run (first line)": ["task=pseudo", f"run_dir={run}"],
    }


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    repeats, wait = (1, 0.5) if args.quick else (args.repeats, 2)
    from mask_cls.data.synthetic import SynthConfig, generate

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        generate(data, SynthConfig(train_persons=12, eval_persons=2, image_size=(64, 48), seed=1, workers=1),
                 progress=False)
        run = tmp / "run"  # a finished tiny run for predict and pseudo
        done = subprocess.run([sys.executable, str(ROOT / "run.py"), "data=mask", f"data.root={data}",
                               "model.backbone=resnet10t", "data.image_size=[64,48]", "data.n_folds=3",
                               "data.num_workers=0", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                               "trainer.limit_val_batches=1", "task.predict=false", f"hydra.run.dir={run}"],
                              capture_output=True, text=True, env={**os.environ, "WANDB_MODE": "disabled"})
        assert done.returncode == 0, done.stderr[-2000:]
        base = [timed([sys.executable, "-c", "import pandas; print('ok')"], str(tmp))[0] for _ in range(repeats)]
        rows = [("python -c 'import pandas'", statistics.median(base), statistics.median(base))]
        for i, (name, overrides) in enumerate(cases(tmp, data, run).items()):
            firsts, ends = [], []
            for j in range(repeats):
                first, end = timed([sys.executable, str(ROOT / "run.py"), *overrides,
                                    f"hydra.run.dir={tmp / 'runs' / f'{i}_{j}'}"], str(tmp), wait)
                firsts.append(first)
                ends.append(end)
            error = statistics.median(ends) if all(e is not None for e in ends) else None
            rows.append((name, statistics.median(firsts), error))
    b = rows[0][1]
    print(f"\nstartup: seconds to the first line and to the error (median of {repeats}), ratio to importing pandas")
    print(f"machine: {machine()}")
    print(f"{'command':<44}{'first line':>11}{'ratio':>8}{'error':>9}{'ratio':>8}")
    for name, first, error in rows:
        shown = f"{error:>9.2f}{error / b:>7.2f}x" if error is not None else f"{'(runs)':>9}{'':>8}"
        print(f"{name:<44}{first:>11.2f}{first / b:>7.2f}x{shown}")


if __name__ == "__main__":
    main()
