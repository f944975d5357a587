"""The DataModule's options, one dataclass per concern, with their defaults in one place and
checked once: ``DataConfig.from_flat`` reads the flat ``data`` config group as the user types it
(``data.batch_size=32``), as ``ModuleConfig`` does for the LightningModule.

The process-wide image pixel limit (``data.max_image_pixels``) is not here: run.py sets it once,
before any task, because tasks that never build a DataModule read images too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from mask_cls.errors import ConfigError

#: keys of the ``data`` group that configure something else (kept there for the command line)
ELSEWHERE = {"max_image_pixels": "process-wide, set by run.py before any task"}


@dataclass(frozen=True)
class Source:
    """Which dataset: a layout's name, its root and its options (``layouts.open`` reads these)."""

    layout: str = "competition"
    root: str | None = None
    csv: str | None = None
    check_images: bool = True
    synth: Mapping[str, Any] | None = None  # draw the synthetic set into root when it is missing


@dataclass(frozen=True)
class Loading:
    """How images reach the model."""

    image_size: tuple[int, int] = (256, 192)  # (H, W)
    batch_size: int = 64
    num_workers: int = 4
    pin_memory: bool = True
    persistent_workers: bool = True
    cache: bool = False
    cache_dir: str | None = None
    on_bad_image: str = "error"


@dataclass(frozen=True)
class Folds:
    """Person-level K-fold: fold ``fold`` of ``n_folds`` is validation; persons move only with ``split_seed``."""

    n_folds: int = 5
    fold: int = 0
    split_seed: int = 42


@dataclass(frozen=True)
class TrainingRows:
    """What the training side learns from (validation is scored on the labels as given)."""

    age_threshold: int = 60
    drop_ages: tuple[int, ...] = ()
    relabel: str | None = None
    pseudo_csv: str | None = None
    pseudo_weight: float = 1.0
    soft_targets: str | None = None  # a teacher's probabilities per image (ssl=distill; task=distill writes it)


@dataclass(frozen=True)
class DataConfig:
    source: Source = field(default_factory=Source)
    loading: Loading = field(default_factory=Loading)
    folds: Folds = field(default_factory=Folds)
    rows: TrainingRows = field(default_factory=TrainingRows)
    augment: Mapping[str, Any] = field(default_factory=dict)  # {"train": ..., "val": ...} transform lists
    ssl: Mapping[str, Any] | None = None  # the ssl group (UDA's unlabeled stream)

    @classmethod
    def from_flat(cls, flat: Mapping[str, Any]) -> DataConfig:
        """From the flat ``data`` group; an unknown key is refused, the values are checked."""
        groups = {f.name: f.type for f in fields(cls) if f.name in ("source", "loading", "folds", "rows")}
        owner = {name: group for group, kind in (("source", Source), ("loading", Loading), ("folds", Folds),
                                                 ("rows", TrainingRows)) for name in _names(kind)}
        parts: dict[str, dict[str, Any]] = {g: {} for g in groups}
        for key, value in flat.items():
            if key in owner:
                parts[owner[key]][key] = value
            elif key not in ("augment", "ssl") and key not in ELSEWHERE:
                raise ConfigError(f"data.{key}: not a data option (known: {', '.join(sorted(owner))})")
        loading = parts["loading"]
        if "image_size" in loading:
            from mask_cls.data.transforms import check_size

            h, w = check_size(loading["image_size"])
            loading["image_size"] = (h, w)
        rows = parts["rows"]
        rows["drop_ages"] = tuple(int(a) for a in rows.get("drop_ages") or ())
        if "pseudo_weight" in rows:
            rows["pseudo_weight"] = float(rows["pseudo_weight"])
        return cls(Source(**parts["source"]), Loading(**loading), Folds(**parts["folds"]), TrainingRows(**rows),
                   dict(flat.get("augment") or {}), flat.get("ssl"))

    def check(self, root: object) -> None:
        """The options that a typo makes wrong, each refused in one line (``root``: the dataset's
        root as given, the layout's or the table's)."""
        ld = self.loading
        if root is None:
            raise ConfigError("data.root is not set")
        if int(ld.batch_size) < 1:
            raise ConfigError(f"data.batch_size={ld.batch_size}: must be at least 1")
        if int(ld.num_workers) < 0:
            raise ConfigError(f"data.num_workers={ld.num_workers}: must be 0 or more")
        if ld.on_bad_image not in ("error", "skip"):
            raise ConfigError(f"data.on_bad_image={ld.on_bad_image!r}: choose error or skip")
        if not 30 < int(self.rows.age_threshold) <= 60:
            raise ConfigError(f"data.age_threshold={self.rows.age_threshold}: must be in 31..60")
        distill = (self.ssl or {}).get("name") == "distill"
        if distill != bool(self.rows.soft_targets):
            raise ConfigError("ssl=distill trains on data.soft_targets=FILE (a teacher's teacher_probs.csv), and "
                              "data.soft_targets needs ssl=distill: task=distill teacher=RUN sets both")
        if self.rows.soft_targets and self.rows.pseudo_csv:
            raise ConfigError("data.soft_targets with data.pseudo_csv: one teacher at a time (distillation already "
                              "learns the teacher's view of the unlabeled images)")


def _names(kind: type) -> list[str]:
    return [f.name for f in fields(kind)]
