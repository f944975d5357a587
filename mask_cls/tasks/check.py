"""``task=check data.root=PATH``: validate a dataset before anyone trains on it.

Prints a summary and every problem; writes check.json; exits 0 when the data is usable,
1 when not."""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from mask_cls.data import layouts
from mask_cls.data.doctor import check_copies_across
from mask_cls.data.report import Report
from mask_cls.io import write_json
from mask_cls.progress import track
from mask_cls.tasks import register

#: findings printed one by one; past this, their kinds with a count and an example
PRINTED = 30
#: counts whose key alone would mislead on screen
SHOWN = {"images": "images decoded (train and eval)"}


def show_findings(report: Report) -> None:
    for f in report.findings[:PRINTED]:
        print(f.line(), file=sys.stderr if f.severity == "error" else sys.stdout)
    more = sum(report.totals.values()) - min(PRINTED, len(report.findings))
    if more <= 0:
        return
    print(f"... and {more} more finding(s), by kind (all of them counted in check.json):")
    kinds = report.grouped()
    for k in kinds[:PRINTED]:
        print(f"  {k['count']:>9} x {k['severity']}: {k['kind']}  (e.g. {k['examples'][0][:160]})")
    if len(kinds) > PRINTED:
        print(f"  ... and {len(kinds) - PRINTED} more kind(s)")


def _images(layout: layouts.Layout) -> tuple[list[str], list[str]]:
    """The training and eval images of a usable layout (the readers' own paths)."""
    train = layout.read_train(check_images=False)
    info = layout.read_eval(check_images=False)
    return [str(p) for p in train["image"]], [] if info is None else [str(p) for p in info["image"]]


@register("check")
def check(cfg: DictConfig, out: Path) -> int:
    layout = layouts.open(cfg.data)
    root = layout.root

    def progress(items, n):
        return track(items, n, "checking", "entries") if n > 500 else items

    report = Report()
    layout.check(report, progress)  # a missing root or file is a finding
    if report.usable:  # across train and eval: copies of training photos among the eval images
        check_copies_across(*_images(layout), report, progress)
    write_json(report.as_dict(), out / "check.json")
    console = Console(stderr=False)
    table = Table(title=f"{root}: {'usable' if report.usable else 'NOT usable'}")
    table.add_column("what")
    table.add_column("count", justify="right")
    for k, v in sorted(report.counts.items()):
        table.add_row(SHOWN.get(k, k), str(v))
    for (w, h), n in report.sizes.most_common(5):
        table.add_row(f"images of {h} x {w} (H x W, as data.image_size)", str(n))
    table.add_row("errors", str(report.totals["error"]))
    table.add_row("warnings", str(report.totals["warning"]))
    console.print(table)
    show_findings(report)
    print(f"report: {out / 'check.json'}")
    if not report.usable:
        sys.exit(1)
    return 0
