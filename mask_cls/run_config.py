"""A run remembers its recipe: ``resume=RUN_DIR``, ``task=predict run_dir=...`` and ``task=pseudo
run_dir=...`` start from the run's recorded command; what the user types now wins over it.

The files of a run are untrusted data (a shared drive, a colleague's zip), so nothing read from
them reaches a resolver, ``instantiate`` or an output path. The config is *re-composed from this
project's own* ``conf/``: the run contributes only its recorded overrides
(``.hydra/overrides.yaml``), each checked as a plain ``key=value`` of a key that ``conf/``
defines, with a literal value (no ``${``, no ``_target_``, no dict, no ``+``/``~``, no sweep), and
its data root and table (absolute paths in ``.hydra/config.yaml``, read as literal strings).
Keys whose value this project derives from the run directory (``${paths...}``, ``${hydra:...}``:
checkpoint, logger and cache folders) are never taken from the file; a value of a key that looks
like a secret was masked when the run was saved and is left to the command line.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from mask_cls import recipe as recipe_rules
from mask_cls.errors import ConfigError
from mask_cls.runfiles import read_yaml
from mask_cls.secrets import MASK, is_secret_key, mask_text

log = logging.getLogger("mask_cls")
CONF = Path(__file__).resolve().parents[1] / "conf"
#: how a run was launched, not what it trained: never carried over
LAUNCH_KEYS = ("hydra", "hparams_search")
#: input locations that the run saved as absolute paths (readable from any working directory)
READ_PATHS = ("data.root", "data.csv")
#: what this command was re-composed from (the config line shows it): run, recipe lines, group choices
RECOMPOSED: dict[str, Any] = {}
#: a run records at most this many overrides, each at most this long
MAX_LINES, MAX_LINE = 500, 4096
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")
_CHOICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


def run_files(run: str | Path) -> Path | None:
    """The ``.hydra`` folder of a run (a train or cv run, or the run of a ``.ckpt`` in its
    ``checkpoints/``); None where there is none."""
    run = Path(run)
    candidates = [run / ".hydra"]
    if run.suffix == ".ckpt":
        candidates = [run.parent.parent / ".hydra", run.parent / ".hydra"]
    return next((c for c in candidates if (c / "config.yaml").is_file()), None)


def saved_config(run: str | Path) -> tuple[Path, dict] | None:
    """(file, content) of the run's ``.hydra/config.yaml`` as plain data, never resolved; None
    where there is none. Callers read literal values from it (and check their types)."""
    folder = run_files(run)
    if folder is None:
        return None
    path = folder / "config.yaml"
    content = read_yaml(path)
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: not a run config")
    return path, content


def _literal(value) -> bool:
    """A number, bool, null, string without interpolation, or a list of those."""
    if isinstance(value, list):
        return all(_literal(v) for v in value)
    if isinstance(value, str):
        return "${" not in value
    return value is None or isinstance(value, bool | int | float)


def _group(key: str) -> bool:
    return (CONF / key).is_dir()


def _parse(line, where: str):
    """One saved override as a Hydra ``Override``, refused unless it is a plain change of a key
    (or a choice of a config group) to a literal value."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType, ValueType

    if not isinstance(line, str) or "${" in line or "_target_" in line:
        raise ConfigError(f"{where}: {str(line)[:120]!r} is refused: a saved run holds plain key=value "
                          "overrides only (no interpolation, no _target_)")
    try:
        ov = OverridesParser.create().parse_override(line)
    except Exception:  # noqa: BLE001 - any grammar error of an untrusted line is one refusal
        raise ConfigError(f"{where}: {line[:120]!r} is not a key=value override; refused") from None
    key = ov.key_or_group
    if ov.type != OverrideType.CHANGE or ov.value_type != ValueType.ELEMENT or ov.package is not None:
        raise ConfigError(f"{where}: {line[:120]!r} is refused: a saved run may only change keys of this "
                          "project's conf/ (no +, ~, @ or sweep); type it yourself if you trust it")
    value = ov.value()
    if not _KEY.match(key) or any(p.startswith("_") for p in key.split(".")) or not _literal(value):
        raise ConfigError(f"{where}: {line[:120]!r} is refused: only literal values (numbers, strings, lists) "
                          "of plain keys are taken from a saved run")
    if _group(key):
        names = value if isinstance(value, list) else [value]
        bad = [n for n in names if not (isinstance(n, str) and _CHOICE.match(n) and (CONF / key / f"{n}.yaml").is_file())]
        if bad:
            raise ConfigError(f"{where}: {line[:120]!r}: {bad[0]!r} is not an option of conf/{key}/; refused")
    return ov


def _covered(key: str, typed: list[str]) -> bool:
    """Whether the user typed ``key`` or a node above it (a retyped group replaces its subtree)."""
    return any(key == t or key.startswith(t + ".") for t in typed)


def _node(cfg: DictConfig, key: str) -> tuple[DictConfig, str] | None:
    """(parent node, leaf) of ``key`` in ``cfg``, or None where the key does not exist."""
    parent_key, _, leaf = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key, default=None, throw_on_missing=False) if parent_key else cfg
    if not isinstance(parent, DictConfig) or leaf not in parent:
        return None
    return parent, leaf


def recipe(run: str | Path, typed: list[str], lines: list[str], compose) -> tuple[list[str], dict, Path] | None:
    """The saved run's overrides to compose with (checked; those the user retyped left out) and
    its literal input paths. ``typed``: the keys the user typed, ``lines`` the whole overrides;
    ``compose(overrides)`` composes this project's ``conf/``. Only keys of the recipe
    (``mask_cls/recipe.py``) are taken; this command's own keys are skipped; any other line is
    refused in one line naming the file and the key."""
    folder = run_files(run)
    if folder is None:
        return None
    path = folder / "overrides.yaml"
    saved = read_yaml(path) if path.is_file() else []
    if not isinstance(saved, list):
        raise ConfigError(f"{path}: not a list of overrides")
    if len(saved) > MAX_LINES:
        raise ConfigError(f"{path}: {len(saved)} overrides; a run records at most {MAX_LINES}; refused")
    kept, masked = [], []
    for line in saved:
        if isinstance(line, str) and len(line) > MAX_LINE:
            raise ConfigError(f"{path}: an override of {len(line)} characters (at most {MAX_LINE}); refused")
        key = line.split("=", 1)[0].lstrip("+~").split("@")[0] if isinstance(line, str) else ""
        if key.split(".")[0].split("/")[0] in LAUNCH_KEYS or _covered(key, typed) or key in READ_PATHS \
                or recipe_rules.is_command_key(key, _group(key)):
            continue  # this command's own (or never carried over): not even parsed
        if is_secret_key(key) and line.split("=", 1)[-1] == MASK:
            masked.append(key)  # saved masked: the user types it again
            continue
        kept.append(_in_recipe(_parse(line, str(path)), path))
    choices = [ov.input_line for ov in kept if _group(ov.key_or_group)]
    base = compose(choices + lines)
    accepted, skipped = list(choices), []
    for ov in kept:
        key = ov.key_or_group
        if _group(key):
            continue
        if _node(base, key) is None:
            skipped.append(f"{key} (not a key of this project's config)")
        else:
            accepted.append(ov.input_line)
    if masked:
        log.warning("%s: %s saved masked; type it again if this run needs it", path, ", ".join(masked))
    if skipped:
        log.warning("%s: not taken from the saved run: %s", path, "; ".join(skipped))
    values = _read_paths(folder / "config.yaml", typed)
    return accepted, values, folder


def _in_recipe(ov, path: Path):
    """``ov`` if a saved run may make this change, else one refusal naming the file and the key."""
    key, value = ov.key_or_group, ov.value()
    if not recipe_rules.is_recipe_key(key, _group(key)):
        raise ConfigError(f"{path}: {key} is refused: a saved run changes the recipe only (what is trained and how), "
                          f"never files, folders, loggers or hosts; type {key}=... yourself if you trust it")
    why = recipe_rules.value_refusal(key, value)
    if why:
        raise ConfigError(f"{path}: {key} is refused: {why}; type {key}=... yourself if you trust it")
    return ov


def _read_paths(path: Path, typed: list[str]) -> dict:
    """The run's data root and table as it saved them (absolute), unless retyped."""
    content = read_yaml(path)
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: not a run config")
    found: dict[str, str] = {}
    for key in READ_PATHS:
        if _covered(key, typed):
            continue
        node: Any = content
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            continue
        if not isinstance(node, str) or "${" in node or not node or "\0" in node:
            raise ConfigError(f"{path}: {key} must be a plain path; refused")
        found[key] = node
    return found


def typed_lines() -> list[str]:
    """The overrides the user typed on the command line (``hydra.*`` ones left out)."""
    from mask_cls.rundir import typed_overrides

    return typed_overrides()


def source_of(cfg: DictConfig) -> str | None:
    """The run whose recipe this command starts from: ``resume=``, or ``run_dir=`` of a task
    that reads a run (of a list of runs, the first: its data root and sizes)."""
    if cfg.get("resume"):
        return str(cfg.resume)
    if cfg.task.get("reuses_run_config") and cfg.get("run_dir"):
        runs = cfg.run_dir
        if isinstance(runs, ListConfig | list):
            return str(runs[0]) if len(runs) else None
        return str(runs)
    return None


def compose_project(overrides: list[str]) -> DictConfig:
    """``conf/config.yaml`` composed with ``overrides`` by the running Hydra app (its search path)."""
    from hydra import compose
    from hydra.errors import HydraException

    try:
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    except HydraException as e:
        raise ConfigError(f"the run's recorded overrides do not compose: {str(e).splitlines()[0][:200]}") from None
    RECOMPOSED["choices"] = dict(cfg.hydra.runtime.choices)  # the groups this config was made of (the config line)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def with_run_config(cfg: DictConfig, compose=compose_project, typed: list[str] | None = None) -> DictConfig:
    """``cfg`` re-composed from ``conf/`` with the recipe of ``resume=`` or ``run_dir=`` and the
    overrides the user ``typed`` (the command line's by default)."""
    source = source_of(cfg)
    if not source:
        return cfg
    lines = typed_lines() if typed is None else [t for t in typed if not t.lstrip("+~").startswith("hydra.")]
    typed = [o.split("=", 1)[0].lstrip("+~") for o in lines]
    found = recipe(source, typed, lines, compose)
    if found is None:
        log.warning("%s: no .hydra/config.yaml; using this command's config only", source)
        return cfg
    accepted, values, folder = found
    merged = compose(accepted + lines)
    for key, value in values.items():
        OmegaConf.update(merged, key, value, merge=False)
    check_targets(merged, typed)
    root = OmegaConf.select(merged, "data.root", default=None, throw_on_missing=False)
    if "data.root" in values and not Path(root).exists():
        raise ConfigError(f"data.root={root} (from {folder / 'config.yaml'}) no longer exists; pass data.root=...")
    RECOMPOSED.update(run=str(folder.parent), recipe=[mask_text(a) for a in accepted])
    return merged


@functools.cache
def allowed_targets() -> frozenset[str]:
    """Every ``_target_`` written in the project's own config groups."""
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


def check_targets(cfg: DictConfig, typed: list[str]) -> None:
    """After composition: every ``_target_`` outside what the user typed is one of ``conf/``'s."""
    allowed = allowed_targets()

    def walk(node, where: str) -> None:
        if _covered(where, typed):
            return
        if isinstance(node, dict):
            target = node.get("_target_")
            if target is not None and target not in allowed:
                raise ConfigError(f"{where}: _target_ {target!r} is not one of this project's; refused")
            for k, v in node.items():
                walk(v, f"{where}.{k}" if where else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}.{i}")

    walk(OmegaConf.to_container(cfg, resolve=False), "")
