"""What ``task=check`` found: findings (error or warning, file, message) and counts.

A table of two million broken rows is two million findings: the first ``LIMIT`` are kept in
detail, every one is counted, and identical findings (the same message but for names and
numbers) are grouped with a count and a few examples, so the report stays small and linear.

Its own module, free of pandas, so that a missing data root is reported before the CSV
machinery loads."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

LIMIT = 1000  # findings kept one by one (check.json); the rest are counted in their kinds
EXAMPLES = 3
_QUOTED, _PATHLIKE, _NUMBER = re.compile(r"'[^']*'"), re.compile(r"\S*[/\\]\S*"), re.compile(r"\d+")


def printable(text) -> str:
    """``text`` fit for a terminal, a log or JSON: bytes of a file name that are not UTF-8 as escapes."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def kind(message: str) -> str:
    """A finding's message with its particulars (quoted values, paths, numbers) left out."""
    return _NUMBER.sub("N", _PATHLIKE.sub("<path>", _QUOTED.sub("'...'", message)))


@dataclass
class Finding:
    severity: str  # error | warning
    file: str
    message: str

    def line(self) -> str:
        return f"{self.severity}: {self.file}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)  # the first LIMIT
    counts: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)
    totals: Counter = field(default_factory=Counter)  # severity -> findings
    kinds: dict[tuple[str, str], list] = field(default_factory=dict)  # (severity, kind) -> [count, examples]

    def _add(self, severity: str, file, message: str) -> None:
        file, message = printable(file), printable(message)
        self.totals[severity] += 1
        if len(self.findings) < LIMIT:
            self.findings.append(Finding(severity, str(file), message))
        entry = self.kinds.setdefault((severity, kind(message)), [0, []])
        entry[0] += 1
        if len(entry[1]) < EXAMPLES:
            entry[1].append(f"{file}: {message}")

    def error(self, file, message: str) -> None:
        self._add("error", file, message)

    def warn(self, file, message: str) -> None:
        self._add("warning", file, message)

    @property
    def usable(self) -> bool:
        return self.totals["error"] == 0

    def grouped(self) -> list[dict]:
        """The kinds of finding, most frequent first."""
        rows = [{"severity": s, "kind": k, "count": n, "examples": ex} for (s, k), (n, ex) in self.kinds.items()]
        return sorted(rows, key=lambda r: (r["severity"] != "error", -r["count"]))

    def as_dict(self) -> dict:
        return {"usable": self.usable, "counts": dict(self.counts),
                "image_sizes": {f"{w}x{h}": n for (w, h), n in self.sizes.most_common()},
                "errors": self.totals["error"], "warnings": self.totals["warning"],
                "problems": [f.__dict__ for f in self.findings],
                "problems_left_out": sum(self.totals.values()) - len(self.findings),
                "kinds": self.grouped()}
