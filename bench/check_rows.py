"""``task=check`` on huge broken tables: rows per second at N, 2N and 4N rows (linear time means
the same rate), and what the report keeps (capped findings, every one counted).

Each row is broken the way a hostile or damaged table is: the image it names does not exist, and
one row in ten has a label that is not a class. Both layouts: ``data=table`` (one CSV) and the
competition layout (a ``train.csv`` whose person folders are missing). The baseline is the
smallest table, measured in the same run.

    python bench/check_rows.py [--quick] [--rows 500000] [--cli]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, parser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def table_csv(folder: Path, n: int) -> Path:
    csv = folder / f"table_{n}.csv"
    with open(csv, "w") as f:
        f.write("path,label\n")
        for i in range(n):
            f.write(f"img/{i}.jpg,{'x' if i % 10 == 0 else i % 18}\n")
    return csv


def competition_root(folder: Path, n: int) -> Path:
    root = folder / f"comp_{n}"
    (root / "train" / "images").mkdir(parents=True)
    with open(root / "train" / "train.csv", "w") as f:
        f.write("id,gender,race,age,path\n")
        for i in range(n):
            f.write(f"{i:06d},{'robot' if i % 10 == 0 else 'female'},Asian,45,{i:06d}_female_Asian_45\n")
    return root


def rate(layout: str, root: Path, csv: Path | None) -> tuple[float, int, int, int]:
    """(rows per second, findings in total, findings kept, kinds) of the data doctor in process."""
    from mask_cls.data import layouts
    from mask_cls.data.report import Report

    report = Report()
    opened = layouts.open({"layout": layout, "root": root} | ({"csv": str(csv)} if csv else {}))
    t = time.perf_counter()
    opened.check(report, lambda items, n: items)
    seconds = time.perf_counter() - t
    rows = int(report.counts.get("images listed") or report.counts.get("persons") or 0)
    return rows / seconds, sum(report.totals.values()), len(report.findings), len(report.kinds)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rows", type=int, default=500_000, help="N: tables of N, 2N and 4N rows")
    p.add_argument("--cli", action="store_true", help="also time `python run.py task=check` on the 4N-row table")
    args = p.parse_args()
    n = 2_000 if args.quick else args.rows
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        rate("table", tmp, table_csv(tmp, 100))  # imports and caches warmed before timing
        for layout in ("table", "competition"):
            base = None
            for k in (1, 2, 4):
                size = k * n
                if layout == "table":
                    csv = table_csv(tmp, size)
                    root = tmp
                else:
                    csv, root = None, competition_root(tmp, size)
                r, total, kept, kinds = rate(layout, root, csv)
                base = base or r
                rows.append((f"{layout}, {size:,} rows", r, r / base, total, kept, kinds))
        print(f"\ntask=check on broken tables: rows per second (ratio against {n:,} rows; 1.00x = linear)")
        print(f"machine: {machine()}")
        print(f"{'table':<32}{'rows/s':>12}{'ratio':>9}{'findings':>12}{'kept':>7}{'kinds':>7}")
        for name, r, ratio, total, kept, kinds in rows:
            print(f"{name:<32}{r:>12,.0f}{ratio:>8.2f}x{total:>12,}{kept:>7}{kinds:>7}")
        if args.cli:
            csv = tmp / f"table_{4 * n}.csv"
            t = time.perf_counter()
            r = subprocess.run([sys.executable, str(ROOT / "run.py"), "task=check", "data=table", f"data.csv={csv}",
                                f"hydra.run.dir={tmp / 'check'}"], capture_output=True, text=True, cwd=tmp)
            seconds = time.perf_counter() - t
            printed = len((r.stdout + r.stderr).splitlines())
            print(f"\npython run.py task=check data=table data.csv=<{4 * n:,} rows>: {seconds:.1f} s, exit {r.returncode}, "
                  f"{printed} lines printed, check.json {(tmp / 'check' / 'check.json').stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
