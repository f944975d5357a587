"""Runs grouped into *arms*: the same recipe trained with different seeds.

A job's identity is its recorded overrides minus ``seed`` and minus what only says where it
writes or how it shows (``hydra.*``, ``paths.*``, the logger, loader processes, progress): the
jobs ``data.age_threshold=58 seed=0`` and ``data.age_threshold=58 seed=1`` are one arm of two
seeds. Every file is read as data (``runfiles``: size-capped, never resolved or instantiated),
at fixed names inside the folders the user named; a sweep folder's jobs are its numbered
sub-folders, and a job that failed or wrote no score is kept, with why, never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mask_cls.errors import ConfigError
from mask_cls.runfiles import read_json, read_yaml

#: where each score lives in a run: (file, key)
METRICS = {"val/f1_best": ("metrics.json", "val/f1_best"), "val/f1": ("metrics.json", "val/f1"),
           "cv/f1": ("cv.json", "cv/f1"), "report/f1": ("report/scores.json", "f1"), "f1": ("scores.json", "f1")}
#: override keys that do not change what is trained (where it writes, how it shows, how fast it loads)
NOT_IDENTITY = ("seed", "hydra", "paths", "run_dir", "runs", "progress", "extras", "logger", "hparams_search",
                "data.num_workers", "data.pin_memory", "data.persistent_workers")
MAX_BYTES = 5_000_000


@dataclass
class Job:
    path: Path
    overrides: list[str] = field(default_factory=list)
    seed: Any = None
    metric: str = ""
    value: float = math.nan
    status: str = "ok"

    @property
    def identity(self) -> tuple[str, ...]:
        return tuple(sorted(o for o in self.overrides if not _under(key_of(o), NOT_IDENTITY)))


@dataclass
class Arm:
    name: str
    identity: tuple[str, ...]
    jobs: list[Job]

    @property
    def scores(self) -> dict[Any, float]:
        """seed -> score of the jobs that have one (a seed run twice: the mean of its runs, one pair)."""
        runs: dict[Any, list[float]] = {}
        for j in self.jobs:
            if not math.isnan(j.value):
                runs.setdefault(j.seed, []).append(j.value)
        return {seed: math.fsum(v) / len(v) for seed, v in runs.items()}


def key_of(override: str) -> str:
    """``+a.b=1`` -> ``a.b``; ``~a.b`` -> ``a.b``."""
    return override.lstrip("+~").split("=", 1)[0].strip()


def _under(key: str, roots: tuple[str, ...]) -> bool:
    return any(key == r or key.startswith(r + ".") for r in roots)


def job_folders(paths: list[str]) -> list[Path]:
    """The run folders named, a sweep folder (``multirun.yaml`` or numbered jobs) expanded to its
    numbered jobs in order. A link as a job is not followed."""
    out: list[Path] = []
    for p in paths:
        folder = Path(p)
        if not folder.is_dir():
            raise ConfigError(f"runs: {p}: not a folder")
        if (folder / ".hydra" / "config.yaml").is_file():
            out.append(folder)
            continue
        jobs = sorted((c for c in folder.iterdir() if c.name.isdigit() and c.is_dir() and not c.is_symlink()),
                      key=lambda c: int(c.name))
        if not jobs:
            raise ConfigError(f"runs: {p}: neither a run (no .hydra/config.yaml) nor a sweep (no numbered jobs)")
        out += jobs
    return out


def read_job(folder: Path, metric: str | None) -> Job:
    """One job: its overrides, seed and score (``metric``, or the score its task optimises)."""
    job = Job(folder)
    hydra = folder / ".hydra"
    if not (hydra / "config.yaml").is_file():
        job.status = _failure(folder, "failed (no .hydra/config.yaml)")
        return job
    config = _mapping(read_yaml(hydra / "config.yaml"))
    lines = read_yaml(hydra / "overrides.yaml") if (hydra / "overrides.yaml").is_file() else []
    job.overrides = [str(o) for o in lines] if isinstance(lines, list) else []
    job.seed = config.get("seed")
    task = _mapping(config.get("task"))
    job.metric = metric or str(task.get("optimized_metric") or ("f1" if task.get("name") == "evaluate"
                                                                 else "val/f1_best"))
    name, key = METRICS.get(job.metric, ("metrics.json", job.metric))
    content = read_json(folder / name, MAX_BYTES) if (folder / name).is_file() else None
    value = _mapping(content).get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        job.value = float(value)
    else:
        job.status = _failure(folder, f"no {job.metric} in {name}")
    return job


def _failure(folder: Path, default: str) -> str:
    failed = folder / "failed.txt"
    if failed.is_file() and not failed.is_symlink():
        from mask_cls.inert import printable
        from mask_cls.runfiles import read_bytes

        try:
            text = read_bytes(failed, 65536).decode("utf-8", "replace").strip().splitlines()
        except ConfigError as e:
            return f"failed ({e})"
        return f"failed: {printable(text[0][:300]) if text else ''}"
    return default


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def group(jobs: list[Job]) -> list[Arm]:
    """Arms in the order their first job comes, each named by the overrides that set it apart
    from the other arms (``default`` where it has none)."""
    by: dict[tuple[str, ...], list[Job]] = {}
    for j in jobs:
        by.setdefault(j.identity, []).append(j)
    shared = set.intersection(*(set(i) for i in by)) if by else set()
    return [Arm(" ".join(o for o in identity if o not in shared) or "default", identity, members)
            for identity, members in by.items()]


def reference(arms: list[Arm], given: str | None) -> Arm:
    """The arm named by ``task.reference`` (overrides that its identity holds, space-separated),
    else the arm with the fewest overrides (the one nearest the defaults), first in order on a tie."""
    if given:
        wanted = str(given).split()
        hits = [a for a in arms if all(w in a.identity for w in wanted)]
        if len(hits) != 1:
            names = "; ".join(a.name for a in arms)
            raise ConfigError(f"task.reference={given}: matches {len(hits)} arms (one needed); the arms: {names}")
        return hits[0]
    return min(arms, key=lambda a: len(a.identity))
