"""A misspelt override in one line, with the fix, before Hydra composes anything: Hydra's own
message for ``trainer.max_epoch=3`` is seven lines without a suggestion. The keys come from
this project's ``conf/`` files as they are written (each option file under its group's
package), so a key is accepted here when any option of its group has it; what only another
option has is left to Hydra, which says so itself."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

CONF = Path(__file__).resolve().parents[1] / "conf"
_PACKAGE = re.compile(r"^#\s*@package\s+(\S+)", re.M)


def _keys(node, prefix: str, out: set[str]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out.add(key)
            _keys(v, key, out)


@functools.cache
def known_keys() -> frozenset[str]:
    """Every dotted key that some file of ``conf/`` defines (``hydra/`` left out)."""
    import yaml

    keys: set[str] = set()
    for path in CONF.rglob("*.yaml"):
        rel = path.relative_to(CONF)
        if rel.parts[0] == "hydra":
            continue
        text = path.read_text(encoding="utf-8")
        package = _PACKAGE.search(text)
        prefix = "" if len(rel.parts) == 1 else ".".join(rel.parts[:-1])
        if package:
            prefix = "" if package[1] == "_global_" else package[1]
        try:  # the C parser where PyYAML has it: the whole conf/ in a few milliseconds
            content = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            continue
        if isinstance(content, dict):
            content = {k: v for k, v in content.items() if k != "defaults"}
            _keys(content, prefix, keys)
    return frozenset(keys)


@functools.cache
def groups() -> Mapping[str, tuple[str, ...]]:
    """Config group -> its options (``data`` -> ``mask``, ``synthetic``, ``table``); read once,
    as ``known_keys`` is: a command checks each of its overrides against them."""
    return MappingProxyType({d.name: tuple(sorted(p.stem for p in d.glob("*.yaml"))) for d in CONF.iterdir()
                             if d.is_dir() and d.name != "hydra"})


def _close(word: str, choices) -> list[str]:
    prefix = sorted((c for c in choices if c.startswith(word) and c != word), key=len)
    return (prefix + [c for c in difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
                      if c not in prefix])[:3]


def problem(override: str) -> str | None:
    """What is wrong with one command-line override, with a suggestion; None when nothing
    (or when only Hydra can tell: additions, deletions, sweeps, ``hydra.*``)."""
    if override.startswith(("-", "+", "~")) or "=" not in override:
        return None
    key, value = override.split("=", 1)
    if not key or "@" in key or "/" in key or key.split(".")[0] == "hydra":
        return None
    options = groups()
    if key in options:
        if "," in value or "(" in value or value in ("null", "") or value in options[key]:
            return None  # a sweep, a list or null: Hydra's
        hint = _close(value, options[key])
        return (f"{key}={value}: no such option of {key} (options: {', '.join(options[key])})"
                + (f"; did you mean {key}={hint[0]}?" if hint else ""))
    known = known_keys()
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    if key in known or key.rsplit(".", 1)[-1].isdigit() or (parent and parent not in known | set(options)):
        return None  # known, a list index, or under a node only composition makes: Hydra's to judge
    hint = _close(key, known)
    return (f"{key}: no such key" + (f"; did you mean {hint[0]}={value}?" if hint else "")
            + f" (a new key is added with +{key}={value})")


def check_argv(argv: list[str]) -> str | None:
    """The first problem among the command's overrides, or None."""
    for arg in argv:
        found = problem(arg)
        if found:
            return found
    return None
