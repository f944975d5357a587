"""Time to first output of each light task, against ``python -c "import pandas"``.

Tasks that neither train nor predict import only what they use: a wrong path or a bad CSV is
reported in about the time Python needs to import pandas, not after Lightning and timm load.

    python bench/startup.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def first_output(args: list[str], cwd: str) -> float:
    """Seconds until the command printed its first byte (stdout or stderr)."""
    t = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc.stdout.read(1)
    elapsed = time.perf_counter() - t
    proc.communicate()
    return elapsed


def main() -> None:
    p = parser(__doc__)
    args = p.parse_args()
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        missing = Path(tmp) / "nothing.csv"
        bad = Path(tmp) / "bad.csv"
        bad.write_text("id,guess\n1,2\n")  # read by pandas, then refused: the cost of a real CSV check
        run = [sys.executable, str(ROOT / "run.py")]
        cases = {
            "python -c 'import pandas'": [sys.executable, "-c", "import pandas; print('ok')"],
            "task=evaluate (missing file)": [*run, "task=evaluate", f"submission={missing}", f"answers={missing}",
                                             f"hydra.run.dir={tmp}/e"],
            "task=evaluate (CSV without ImageID)": [*run, "task=evaluate", f"submission={bad}", f"answers={bad}",
                                                    f"hydra.run.dir={tmp}/e"],
            "task=check (missing data root)": [*run, "task=check", "data=mask", f"data.root={tmp}/none",
                                               f"hydra.run.dir={tmp}/c"],
            "task=train (missing data root)": [*run, "data=mask", f"data.root={tmp}/none", f"hydra.run.dir={tmp}/t"],
        }
        rows = []
        for j, (name, cmd) in enumerate(cases.items()):
            times = []
            for i in range(repeats):
                c = [a.replace(f"{tmp}/e", f"{tmp}/e{j}_{i}").replace(f"{tmp}/c", f"{tmp}/c{i}")
                     .replace(f"{tmp}/t", f"{tmp}/t{i}") for a in cmd]
                times.append(first_output(c, tmp))
            rows.append((name, statistics.median(times)))
    base = rows[0][1]
    print(f"\nstartup: seconds to the first output, median of {repeats}\nmachine: {machine()}")
    print(f"{'command':<40}{'seconds':>10}{'ratio':>9}")
    for name, secs in rows:
        print(f"{name:<40}{secs:>10.2f}{secs / base:>8.2f}x")


if __name__ == "__main__":
    main()
