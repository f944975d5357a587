"""bench/suite.py reads pytest's own summary line (the figures of BENCHMARKS "Test suite")."""

from __future__ import annotations

import math
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import suite  # noqa: E402


@pytest.mark.parametrize("line, passed, failed, seconds", [
    ("770 passed, 54 warnings in 1391.39s (0:23:11)", 770, 0, 1391.39),
    ("1 failed, 769 passed, 7 warnings in 1262.36s (0:21:02)", 769, 1, 1262.36),
    ("==== 3 passed, 2 errors in 5.00s ====", 3, 2, 5.0),
    ("12 passed, 1 failed, 1 error in 61.2s", 12, 2, 61.2),
])
def test_pytest_summary_counts_and_seconds(line, passed, failed, seconds):
    log = "collected 10 items\n3 passed in 1.0s is not the summary when another follows\n" + line + "\nmake: done\n"
    got = suite.pytest_summary(log)
    assert (got["passed"], got["failed"]) == (passed, failed) and got["pytest_seconds"] == pytest.approx(seconds)


def test_no_summary_is_nothing_measured():
    got = suite.pytest_summary("make: *** [Makefile:31: test] Error 1\n")
    assert got["passed"] == 0 and math.isnan(got["pytest_seconds"])


def test_table_rows_are_the_results_file(tmp_path):
    path = tmp_path / "suite.csv"
    suite.append(path, {"date": "2026-12-07", "commit": "abc", "cores": 2, "mode": "inprocess", "target": "ci",
                        "seconds": 541.9, "pytest_seconds": 401.0, "passed": 775, "failed": 0, "rc": 0})
    suite.append(path, {"date": "2026-12-07", "commit": "abc", "cores": 2, "mode": "subprocess", "target": "test-fast",
                        "seconds": 119.0, "pytest_seconds": float("nan"), "passed": 0, "failed": 0, "rc": 2})
    rows = suite.table(path).splitlines()
    assert len(rows) == 4 and path.read_text().count("\n") == 3  # one header
    assert "| inprocess | `CI=true bash .ci/run` | 9 min 01 s | 6 min 41 s | 775 | 0 |" in rows[2]
    assert "| subprocess | `make test-fast` | 1 min 59 s |  | 0 | 0 |" in rows[3]


def test_benchmarks_md_test_suite_table_is_the_committed_results_file():
    """BENCHMARKS.md "Test suite" quotes bench/results/suite.csv as --table prints it, row for row."""
    assert suite.table(suite.RESULTS) in (ROOT / "BENCHMARKS.md").read_text()


def test_a_red_runs_failures_are_pytests_short_summary_lines():
    log = ("tests/test_a.py::test_x FAILED\n=== short test summary info ===\n"
           "FAILED tests/test_a.py::test_x - AssertionError: 1 == 2\nERROR tests/test_b.py::test_y - OSError\n"
           "1 failed, 1 error, 3 passed in 2.0s\n")
    assert suite.failures(log) == ["FAILED tests/test_a.py::test_x - AssertionError: 1 == 2",
                                   "ERROR tests/test_b.py::test_y - OSError"]
    assert suite.failures("5 passed in 1.0s\n") == []


@pytest.mark.slow  # it starts a command (a stand-in for make test)
def test_a_red_measurement_keeps_its_log_and_names_what_failed(tmp_path, monkeypatch, capsys):
    """The clone (and a log inside it) is deleted when bench/suite.py ends: a red run's log is kept."""
    log = "FAILED tests/test_a.py::test_x - AssertionError\n1 failed, 2 passed in 3.0s\n"
    monkeypatch.setattr(suite, "COMMANDS", {"ci": ["bash", "-c", f"printf '{log}'; exit 2"]})
    monkeypatch.setattr(suite.tempfile, "gettempdir", lambda: str(tmp_path))
    row = suite.measure(tmp_path, "ci", "warm")
    assert (row["rc"], row["passed"], row["failed"]) == (2, 2, 1)
    kept = list(tmp_path.glob("suite-*-ci.log"))
    assert len(kept) == 1 and kept[0].read_text() == log
    assert "FAILED tests/test_a.py::test_x - AssertionError" in capsys.readouterr().out
