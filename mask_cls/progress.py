"""Progress a user sees wherever the output goes. On a terminal: a live bar (rich). Anywhere else
(``nohup``, a log file, a notebook, a SLURM job), where a live bar draws only its final state:
plain lines at a steady rhythm, the first at once, then every ``every_s`` seconds, each with what
is done, the rate and the time left. Lines go through the ``mask_cls`` logger, so they also land
in the run's ``run.log``. Training's own lines come from ``mask_cls.callbacks.TrainingProgress``.

``progress.mode``: ``auto`` (bar on a terminal, lines elsewhere), ``bar``, ``lines`` or ``none``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

log = logging.getLogger("mask_cls")
T = TypeVar("T")
MODES = ("auto", "bar", "lines", "none")
#: the process-wide setting (run.py sets it from the config's ``progress`` node)
_mode, _every = "auto", 30.0  # progress.mode, progress.every_s


def configure(mode: str = "auto", every_s: float = 30.0) -> None:
    from mask_cls.errors import ConfigError

    if mode not in MODES:
        raise ConfigError(f"progress.mode={mode!r}: choose one of {', '.join(MODES)}")
    if not every_s >= 0:
        raise ConfigError(f"progress.every_s={every_s}: must be >= 0 (seconds between progress lines)")
    global _mode, _every
    _mode, _every = mode, float(every_s)


def style() -> str:
    """``bar``, ``lines`` or ``none`` for this process and its output."""
    if _mode == "auto":
        return "bar" if sys.stdout.isatty() else "lines"
    return _mode


def every_s() -> float:
    return _every


def duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class Rhythm:
    """When the next line is due: the first call (or, with ``at_once=False``, ``every_s`` seconds
    after the start), then every ``every_s`` seconds."""

    def __init__(self, every: float | None = None, at_once: bool = True):
        self.every = every_s() if every is None else every
        self.last: float | None = None if at_once else time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every:
            self.last = now
            return True
        return False


def track(items: Iterable[T], total: int, description: str, unit: str = "items") -> Iterator[T]:
    """``items`` with progress: a rich bar, or lines ``description: done/total unit (p%), rate, ETA``."""
    kind = style()
    if kind == "bar":
        from rich.progress import track as rich_track

        yield from rich_track(items, description=description, total=total)
        return
    if kind == "none" or total <= 0:
        yield from items
        return
    counter = Counter(total, description, unit)
    for item in items:
        yield item
        counter.update()


class Counter:
    """A tqdm-like counter (``update``, ``close``) that says its progress as ``track``'s lines:
    ``description: done/total unit (p%), rate, time left``. Also stands in for the tqdm bar a
    library draws itself (Lightning's LR finder) where a bar would only smear a log file."""

    def __init__(self, total: int, description: str, unit: str = "items", quiet: bool = False) -> None:
        self.total, self.description, self.unit, self.quiet = max(0, int(total or 0)), description, unit, quiet
        self.rhythm, self.start, self.done = Rhythm(), time.monotonic(), 0

    def update(self, n: int = 1) -> None:
        self.done += n
        if not self.quiet and self.total and (self.rhythm.due() or self.done == self.total):
            elapsed = time.monotonic() - self.start
            rate = self.done / elapsed if elapsed > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            log.info("%s: %d/%d %s (%d%%), %.1f %s/s, %s left", self.description, self.done, self.total, self.unit,
                     100 * self.done // self.total, rate, self.unit, duration(eta))

    def close(self) -> None:
        """Nothing to clear: lines stay as written."""
