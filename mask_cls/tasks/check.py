"""``task=check data.root=PATH``: validate a dataset before anyone trains on it.

Prints a summary and every problem; writes check.json; exits 0 when the data is usable,
1 when not."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.progress import track
from rich.table import Table

from mask_cls.data.report import Report
from mask_cls.io import write_json
from mask_cls.tasks import register
from mask_cls.tasks.common import fresh_run_dir


@register("check")
def check(cfg: DictConfig) -> int:
    out = fresh_run_dir(cfg)
    csv = cfg.data.get("csv")
    root = Path(cfg.data.root or Path(str(csv)).parent)  # data=table: the CSV's folder by default

    def progress(items, n):
        return track(items, description=f"checking {n} entries", total=n) if n > 500 else items

    report = Report()
    if csv and not Path(csv).is_file():
        report.error(csv, "data.csv not found")
    elif root.is_dir():  # pandas and the readers load only for a real folder
        from mask_cls.data import layouts

        name, _, options = layouts.options(cfg.data)
        layouts.check(name, root, report, progress, **options)
    else:
        report.error(root, "data.root not found")
    write_json(report.as_dict(), out / "check.json")
    console = Console(stderr=False)
    table = Table(title=f"{root}: {'usable' if report.usable else 'NOT usable'}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in sorted(report.counts.items()):
        table.add_row(k, str(v))
    for (w, h), n in report.sizes.most_common(5):
        table.add_row(f"images {w}x{h}", str(n))
    errors = sum(f.severity == "error" for f in report.findings)
    table.add_row("errors", str(errors))
    table.add_row("warnings", str(len(report.findings) - errors))
    console.print(table)
    for f in report.findings:
        print(f.line(), file=sys.stderr if f.severity == "error" else sys.stdout)
    print(f"report: {out / 'check.json'}")
    if not report.usable:
        sys.exit(1)
    return 0
