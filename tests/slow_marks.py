"""The ``slow`` marks are written on the tests and checked as they run: during a test not marked
``slow``, starting a command (run.py, a benchmark, torchrun, make) raises. ``conftest.py``'s
setup/teardown hooks say which test runs; this module is imported once (as ``tests.slow_marks``,
by conftest and by any test), so its state and its one patch of ``subprocess.Popen`` are shared."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

#: commands that only a test marked ``slow`` may start (a git call of the code under test is quick)
COMMANDS = ("python", "torchrun", "make", "bash", "sh")
running: dict[str, bool] = {}  # the test being set up, run or torn down: {"slow": marked?}


class UnmarkedSlowTest(RuntimeError):
    """A test (or a fixture it set up first) started a command without ``@pytest.mark.slow``."""


def require_slow(what: str) -> None:
    """Raise during a test not marked ``slow``: ``what`` (a command, a script) is about to run."""
    if running and not running["slow"]:
        raise UnmarkedSlowTest(f"{what}: this test runs a command; mark it @pytest.mark.slow")


class _MarkedOnly(subprocess.Popen):
    """``subprocess.Popen`` that refuses to start a command during a test not marked ``slow``, so
    ``make test-fast`` (``-m "not slow"``) can trust the marks: they are written on the tests, and
    this checks them every time a test runs."""

    def __init__(self, args, *rest, **kwargs):
        if running and not running["slow"]:
            first = str(args if isinstance(args, (str, os.PathLike)) else args[0]).split()[0]
            if Path(first).name.startswith(COMMANDS):
                self._child_created = False  # so Popen.__del__ has nothing to clean up
                raise UnmarkedSlowTest(f"{first}: this test starts a command; mark it @pytest.mark.slow")
        super().__init__(args, *rest, **kwargs)


subprocess.Popen = _MarkedOnly  # type: ignore[misc]  # the tests' process only; run.py's children are untouched
