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


def check_table(layout_name: str, root: Path, csv: str | None) -> Report:
    """Another layout, read through the seam with every image decoded: the first problem (the
    reader stops there) or the counts of a usable table."""
    from mask_cls.data import layouts
    from mask_cls.data.images import read_rgb
    from mask_cls.errors import DataError

    report = Report()
    try:
        table = layouts.read_train(layout_name, root, check_images=True, **({"csv": csv} if csv else {}))
        for path in table["image"]:
            read_rgb(path)  # the full decode, as training does
    except DataError as e:
        report.error(csv or root, str(e))
        return report
    report.counts.update({"images": len(table), "persons": table["person"].nunique()})
    report.counts.update({f"class {c}": int(n) for c, n in table["label"].value_counts().sort_index().items()})
    return report


@register("check")
def check(cfg: DictConfig) -> int:
    out = fresh_run_dir(cfg)
    layout_name = cfg.data.get("layout", "competition")
    root = Path(cfg.data.root or Path(str(cfg.data.get("csv"))).parent)

    def progress(items, n):
        return track(items, description=f"checking {n} entries", total=n) if n > 500 else items

    if layout_name != "competition":
        report = check_table(layout_name, root, cfg.data.get("csv"))
    elif root.is_dir():  # pandas and the readers load only for a real folder
        from mask_cls.data.doctor import check_dataset

        report = check_dataset(root, progress)
    else:
        report = Report()
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
