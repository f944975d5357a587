"""What ``task=check`` found: findings (error or warning, file, message) and counts.

Its own module, free of pandas, so that a missing data root is reported before the CSV
machinery loads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Finding:
    severity: str  # error | warning
    file: str
    message: str

    def line(self) -> str:
        return f"{self.severity}: {self.file}: {self.message}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)

    def error(self, file, message: str) -> None:
        self.findings.append(Finding("error", str(file), message))

    def warn(self, file, message: str) -> None:
        self.findings.append(Finding("warning", str(file), message))

    @property
    def usable(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def as_dict(self) -> dict:
        return {"usable": self.usable, "counts": dict(self.counts),
                "image_sizes": {f"{w}x{h}": n for (w, h), n in self.sizes.most_common()},
                "problems": [f.__dict__ for f in self.findings]}
