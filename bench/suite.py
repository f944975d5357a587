"""How long the test suite takes where CI runs it: a fresh clone of HEAD, ``CI=true bash .ci/run``
(the install, ruff, mypy, then pytest), then ``make test-fast`` in the same clone (the install
done). Each measurement is a row of ``bench/results/suite.csv``; ``--table`` prints the rows as
BENCHMARKS.md's "Test suite" table.

``--mode warm`` (the default) is the suite as it is: commands in the test process
(``tests/inprocess.py``) or forked from a warm process (``tests/forked.py``); ``--mode subprocess``
starts every test command cold, its own ``python run.py``, as the suite did before both
(``MASK_CLS_TEST_SUBPROCESS=1``): the baseline of the ratio. Rows labelled ``inprocess`` were
measured when only ``tests/inprocess.py`` existed.

    python bench/suite.py [--mode warm|subprocess] [--targets ci,test-fast]
    python bench/suite.py --table
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "suite.csv"
FIELDS = ["date", "commit", "cores", "mode", "target", "seconds", "pytest_seconds", "passed", "failed", "rc"]
COMMANDS = {"ci": ["bash", ".ci/run"], "test-fast": ["make", "test-fast"]}


def pytest_summary(text: str) -> dict[str, float]:
    """The counts and seconds of pytest's last summary line (``12 passed, 1 failed ... in 61.2s``)."""
    lines = [ln for ln in text.splitlines() if re.search(r"\b(passed|failed|error)s?\b.* in [\d.]+s", ln)]
    if not lines:
        return {"passed": 0, "failed": 0, "pytest_seconds": float("nan")}
    last = lines[-1]
    count = {k: int(m.group(1)) if (m := re.search(rf"(\d+) {k}", last)) else 0 for k in ("passed", "failed", "error")}
    seconds = float(re.search(r" in ([\d.]+)s", last).group(1))  # type: ignore[union-attr]
    return {"passed": count["passed"], "failed": count["failed"] + count["error"], "pytest_seconds": seconds}


def failures(text: str) -> list[str]:
    """pytest's short summary lines of what failed (``FAILED tests/...``, ``ERROR tests/...``)."""
    return [ln for ln in text.splitlines() if re.match(r"(FAILED|ERROR) \S+", ln)]


def measure(clone: Path, target: str, mode: str) -> dict[str, object]:
    env = {**os.environ, "CI": "true"}
    env.pop("MASK_CLS_TEST_SUBPROCESS", None)
    if mode == "subprocess":
        env["MASK_CLS_TEST_SUBPROCESS"] = "1"
    t = time.perf_counter()
    r = subprocess.run(COMMANDS[target], cwd=clone, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    text = r.stdout + r.stderr
    commit = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=clone, capture_output=True, text=True).stdout.strip()
    if r.returncode:  # the clone goes when the script ends: a red run's log stays, its failures on screen
        log = Path(tempfile.gettempdir()) / f"suite-{commit}-{target}.log"
        log.write_text(text)
        print("\n".join([*failures(text), f"{target} failed (exit {r.returncode}); its log: {log}"]))
    return {"date": datetime.date.today().isoformat(), "commit": commit, "cores": os.cpu_count(), "mode": mode,
            "target": target, "seconds": round(seconds, 1), **pytest_summary(text), "rc": r.returncode}


def append(path: Path, row: dict[str, object]) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def table(path: Path) -> str:
    """The rows as a markdown table, minutes and seconds, each with the command that measured it."""
    def mmss(s: str) -> str:
        return "" if s in ("", "nan") else f"{int(float(s)) // 60} min {int(float(s)) % 60:02d} s"

    out = ["| date | commit | cores | tests run | command | wall (install included for ci) | pytest | passed | failed |",
           "|---|---|---:|---|---|---:|---:|---:|---:|"]
    for r in csv.DictReader(path.open()):
        command = "CI=true bash .ci/run" if r["target"] == "ci" else "make test-fast"
        out.append(f"| {r['date']} | {r['commit']} | {r['cores']} | {r['mode']} | `{command}` | {mmss(r['seconds'])} "
                   f"| {mmss(r['pytest_seconds'])} | {r['passed']} | {r['failed']} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["warm", "subprocess"], default="warm")
    ap.add_argument("--targets", default="ci,test-fast", help="comma-separated, in order, in one clone: ci, test-fast")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--table", action="store_true", help="print the results file as a table and exit")
    args = ap.parse_args()
    if args.table:
        print(table(args.results))
        return
    with tempfile.TemporaryDirectory(prefix="suite-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; clone {clone}")
        for target in args.targets.split(","):
            row = measure(clone, target, args.mode)
            append(args.results, row)
            print(f"{target} ({args.mode}): {row['seconds']} s, pytest {row['pytest_seconds']} s, "
                  f"{row['passed']} passed, {row['failed']} failed, exit {row['rc']}", flush=True)
    print(table(args.results))


if __name__ == "__main__":
    sys.exit(main())
