"""A run remembers its config: ``resume=RUN_DIR``, ``task=predict run_dir=...`` and
``task=pseudo run_dir=...`` start from the run's saved ``.hydra/config.yaml``; what the user
typed on the command line wins over it.

The saved file is untrusted data: it is read as YAML (never evaluated), and every ``_target_``
in it must be one that this project's own ``conf/`` uses (or an albumentations transform), so a
crafted config cannot make Hydra call anything else.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from mask_cls.errors import ConfigError

log = logging.getLogger("mask_cls")
CONF = Path(__file__).resolve().parents[1] / "conf"
#: keys that always come from this command, never from the saved run
OWN_KEYS = ("paths", "task", "run_dir", "resume", "ckpt_path", "allow_unsafe_checkpoint")


@functools.cache
def allowed_targets() -> frozenset[str]:
    """Every ``_target_`` written in the project's own config groups."""
    import yaml

    found: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("_target_"), str):
                found.add(node["_target_"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in CONF.rglob("*.yaml"):
        walk(yaml.safe_load(path.read_text()))
    return frozenset(found)


def _albumentations(target: str) -> bool:
    import albumentations as A

    name = target.removeprefix("albumentations.")
    obj = getattr(A, name, None) if name != target and name.isidentifier() else None
    return isinstance(obj, type) and issubclass(obj, A.BasicTransform | A.BaseCompose)


def check_targets(node, where: str) -> None:
    """Refuse any ``_target_`` that the project's own configs do not use."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not (isinstance(target, str) and (target in allowed_targets() or _albumentations(target))):
            raise ConfigError(f"{where}: _target_ {target!r} is not one of this project's; refused (a saved "
                              "config is data, never code)")
        for k, v in node.items():
            check_targets(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_targets(v, f"{where}[{i}]")


def saved_config(run: str | Path) -> tuple[Path, dict] | None:
    """(file, its plain content) of the run's ``.hydra/config.yaml`` (a train or cv run, or the
    run of a ``.ckpt`` in its ``checkpoints/``); None where there is none."""
    run = Path(run)
    candidates = [run / ".hydra" / "config.yaml"]
    if run.suffix == ".ckpt":
        candidates = [run.parent.parent / ".hydra" / "config.yaml", run.parent / ".hydra" / "config.yaml"]
    for path in candidates:
        if path.is_file():
            try:
                content = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            except Exception as e:  # noqa: BLE001 - any parse failure of an untrusted file is one line
                raise ConfigError(f"{path}: not a readable run config ({type(e).__name__})") from None
            if not isinstance(content, dict):
                raise ConfigError(f"{path}: not a run config")
            check_targets(content, str(path))
            return path, content
    return None


def typed_keys() -> list[str]:
    """The keys the user typed on the command line (``a.b=1``, ``+a=1``, ``model=x``, ``~a``)."""
    from mask_cls.tasks.common import typed_overrides

    return [o.split("=", 1)[0].lstrip("+~") for o in typed_overrides()]


def with_run_config(cfg: DictConfig) -> DictConfig:
    """``cfg`` rebuilt on the saved config of ``resume=`` or (predict, pseudo) ``run_dir=``."""
    source = cfg.get("resume")
    if not source and cfg.task.name in ("predict", "pseudo") and cfg.get("run_dir"):
        runs = cfg.run_dir
        source = runs[0] if isinstance(runs, ListConfig | list) and len(runs) else runs
    if not source or isinstance(source, ListConfig | list):
        return cfg
    found = saved_config(source)
    if found is None:
        log.warning("%s: no .hydra/config.yaml; using this command's config only", source)
        return cfg
    path, saved = found
    from mask_cls.tasks.common import own_paths_relative

    # paths in the earlier run's folder become this run's (configs saved before that rule had them absolute)
    saved = own_paths_relative({k: v for k, v in saved.items() if k != "paths"}, path.parent.parent) | {
        "paths": saved.get("paths")}
    merged = OmegaConf.create(saved)
    keys = typed_keys()
    for key in (*OWN_KEYS, *keys):
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if OmegaConf.select(cfg, key, default="__absent__") == "__absent__":
            if key not in OWN_KEYS:
                log.warning("%s=... typed with a run's config: not a key of the config, ignored", key)
            continue
        OmegaConf.update(merged, key, value, force_add=True, merge=False)
    root = OmegaConf.select(merged, "data.root")
    if "data.root" not in keys and root is not None and not Path(str(root)).exists():
        raise ConfigError(f"data.root={root} (from {path}) no longer exists; pass data.root=...")
    log.info("config of %s, with what you typed on top: %s", path, " ".join(keys) or "(nothing)")
    return merged
