"""Shared helpers of the benchmarks: timing with repetitions, a table printed with the ratio."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch


def parser(doc: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs, not speed")
    p.add_argument("--repeats", type=int, default=3)
    return p


def timed(fn: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Median items/second of ``fn`` (which returns how many items it processed)."""
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates), rates


def machine() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}"


def report(title: str, rows: list[tuple[str, float]], unit: str, baseline: str) -> None:
    base = dict(rows)[baseline]
    print(f"\n{title}\nmachine: {machine()}")
    print(f"{'variant':<44}{unit:>14}{'ratio':>9}")
    for name, value in rows:
        print(f"{name:<44}{value:>14.1f}{value / base:>8.2f}x")
