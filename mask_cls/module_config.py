"""The module's config: what a checkpoint needs to rebuild its model and its input, in one type.

Built from a composed run config (``from_run_config``) or read back from a checkpoint
(``from_checkpoint``, where it is data: plain values checked, weights and compiler never taken
from the file). Saved in the checkpoint as a plain dict (``as_dict``), so a checkpoint alone
rebuilds its model and loads with ``torch.load(weights_only=True)``. Defaults live here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from mask_cls.errors import ConfigError

DEFAULT_NORMALIZE = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
#: training-only augmentation lists of UDA: a model never needs them
_UDA_VIEWS = ("weak", "strong")


def _plain(node: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig | ListConfig) else node


@dataclass(frozen=True)
class ModuleConfig:
    model: dict  # backbone, pretrained, weights, dropout, neck, pooling, channels_last, normalize
    head: dict  # _target_ of a head of models/heads and its arguments
    loss: dict  # _target_ of a criterion of losses/ and its arguments
    optim: dict  # _target_ of an optimiser and its arguments
    sched: dict  # _target_ of a learning-rate schedule and its arguments
    normalize: dict = field(default_factory=lambda: dict(DEFAULT_NORMALIZE))
    image_size: list[int] | None = None  # (H, W) the model was trained at: predict resizes to it
    augment_batch: dict = field(default_factory=dict)  # CutMix / grid shuffle on the device
    engine: dict = field(default_factory=dict)  # agc, compile
    finetune: dict = field(default_factory=dict)  # backbone_lr_mult, freeze_epochs
    ssl: dict = field(default_factory=lambda: {"name": "none"})  # UDA's settings, without its views
    class_counts: list[int] | None = None  # of the training fold: class weights, rare-class margins

    @classmethod
    def from_run_config(cls, cfg: Any, class_counts: list[int] | None = None) -> ModuleConfig:
        """From the composed config of a run (a DictConfig or a plain mapping)."""
        ssl = _plain(cfg.get("ssl")) or {"name": "none"}
        augment = _plain(cfg.get("augment")) or {}
        return cls(model=_plain(cfg["model"]), head=_plain(cfg["head"]), loss=_plain(cfg["loss"]),
                   optim=_plain(cfg["optim"]), sched=_plain(cfg["sched"]), normalize=_plain(cfg["model"]["normalize"]),
                   image_size=list(cfg["data"]["image_size"]) if cfg.get("data") else None, augment_batch=augment.get("batch") or {},
                   engine=_plain(cfg.get("engine")) or {}, finetune=_plain(cfg.get("finetune")) or {},
                   ssl={k: v for k, v in ssl.items() if k not in _UDA_VIEWS}, class_counts=class_counts)

    @classmethod
    def from_mapping(cls, config: ModuleConfig | Mapping[str, Any]) -> ModuleConfig:
        """From the plain dict a checkpoint (or a test) holds; an unknown key is refused."""
        if isinstance(config, ModuleConfig):
            return config
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - names)
        if unknown:
            raise ConfigError(f"module config: unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})")
        missing = [k for k in ("model", "head", "loss", "optim", "sched") if not isinstance(config.get(k), Mapping)]
        if missing:
            raise KeyError(missing[0])
        given = {k: v for k, v in config.items() if v is not None or k in ("image_size", "class_counts")}
        return cls(**given)

    @classmethod
    def from_checkpoint(cls, config: Any) -> ModuleConfig:
        """A checkpoint's saved config, read as data: the weights come from the checkpoint (never
        fetched or read again), a checkpoint never chooses a compiler, every value is plain and
        within bounds, and its targets name this project's registries' objects (a ConfigError otherwise)."""
        from mask_cls import limits, lr_schedules, optimizers, registry

        if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
            raise ConfigError("no model in it")
        config = dict(config)
        config["model"] = {**config["model"], "pretrained": False, "weights": None}
        config["engine"] = {**(config.get("engine") or {}), "compile": False}
        config["ssl"] = {k: v for k, v in (config.get("ssl") or {"name": "none"}).items() if k not in _UDA_VIEWS}
        limits.check(config, limits.MODULE_KEYS)
        for key in ("model", "normalize", "image_size", "augment_batch", "engine", "ssl", "class_counts", "finetune"):
            registry.check_plain(config.get(key), key)
        # head and loss are built through their registries by the module; optimiser and
        # schedule only by a fit, so they are checked here
        optimizers.registry().kwargs(config["optim"])
        lr_schedules.registry().kwargs(config["sched"])
        return cls.from_mapping(config)

    def as_dict(self) -> dict:
        """The plain dict saved in every checkpoint."""
        return asdict(self)

    def with_counts(self, class_counts: list[int] | None) -> ModuleConfig:
        return replace(self, class_counts=class_counts)
