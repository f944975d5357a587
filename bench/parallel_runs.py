"""Two tiny training runs at once, as ``make test``'s two workers run them: one torch thread per
process (what tests/conftest.py sets) against torch's default of one thread per core.

Each process of the pair starts ``run.py`` on the same tiny synthetic set; with the default, two
processes keep 2 x cores threads busy on the cores and spin against each other. The figure is
pairs of runs per minute (median over repetitions, the two settings alternated).

    python bench/parallel_runs.py [--quick] [--repeats 3] [--processes 2]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parser, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mask_cls.data.synthetic import SynthConfig, generate  # noqa: E402

RUN = ["model.backbone=mobilenetv3_small_050", "data.image_size=[64,48]", "data.batch_size=16",
       "data.num_workers=0", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false"]


def pair(data: Path, out: Path, threads: str | None, processes: int, steps: int, extra: list[str]) -> float:
    """Seconds until ``processes`` concurrent training runs have all finished."""
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    env.pop("OMP_NUM_THREADS", None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(ROOT / "run.py"), "data=mask", f"data.root={data}", *RUN,
                               "trainer.max_epochs=1", f"trainer.limit_train_batches={steps}", *extra,
                               f"hydra.run.dir={out}/{i}"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for i in range(processes)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"run.py failed ({threads=}):\n{err[-2000:]}")
    return time.perf_counter() - t


def main() -> None:
    p = parser(__doc__.split("\n")[0])
    p.add_argument("--processes", type=int, default=2, help="runs at once (make test: 2 workers)")
    args = p.parse_args()
    repeats, steps = (1, 1) if args.quick else (args.repeats, 6)
    extra = ["trainer.limit_val_batches=1", "task.predict=false"] if args.quick else []  # --quick: that it runs
    variants = {"torch default (one thread per core)": None, "OMP_NUM_THREADS=1 (tests/conftest.py)": "1"}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, SynthConfig(train_persons=24, eval_persons=3, image_size=(64, 48), seed=0, workers=1),
                 progress=False)
        for i in range(repeats):  # alternated: a drift of the machine hits both settings
            for j, (name, threads) in enumerate(variants.items() if i % 2 == 0 else reversed(variants.items())):
                seconds[name].append(pair(data, Path(tmp) / f"r{i}_{j}", threads, args.processes, steps, extra))
    rows = [(name, 60 * args.processes / statistics.median(s)) for name, s in seconds.items()]
    report(f"{args.processes} run.py training runs at once (median of {repeats}, seconds: "
           + "; ".join(f"{n.split(' ')[0]} {statistics.median(s):.1f}" for n, s in seconds.items()) + ")",
           rows, "runs/minute", next(iter(variants)))


if __name__ == "__main__":
    main()
