"""The one reader of the YAML and JSON files of a run (configs, overrides, metrics, manifests,
calibration, export records): every such file may come from someone else, so each read has a
budget. A regular file only (a FIFO or a device would hang or never end), at most ``MAX_BYTES``,
plain YAML (no tags), aliases expanded to at most ``MAX_NODES`` nodes (a 600-byte YAML of nested
aliases is gigabytes once walked), nesting at most ``MAX_DEPTH`` deep. Every refusal is one
ConfigError line naming the file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from mask_cls.errors import ConfigError

MAX_BYTES = 16 * 2**20
MAX_NODES = 200_000
MAX_DEPTH = 64


def read_bytes(path: str | Path, limit: int | None = None, what: str = "run file") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; opened without blocking, so a
    FIFO named where a file is expected is refused instead of waiting for a writer."""
    path = Path(path)
    limit = MAX_BYTES if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ConfigError(f"{path}: not a readable {what} ({e.strerror or type(e).__name__})") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file (a pipe, device or folder); refused")
        if st.st_size > limit:
            raise ConfigError(f"{path}: {st.st_size} bytes, above the {limit} a {what} may have; refused")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{path}: above the {limit} bytes a {what} may have; refused")
    return data


def _check_graph(node: yaml.Node, path: Path) -> None:
    """Refuse a YAML node graph whose expansion (aliases counted each time they are used) is
    larger than ``MAX_NODES`` or deeper than ``MAX_DEPTH``; linear in the graph's size."""
    sizes: dict[int, tuple[int, int]] = {}
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        if id(n) in sizes and not done:
            continue
        children: list[yaml.Node] = []
        if isinstance(n, yaml.SequenceNode):
            children = list(n.value)
        elif isinstance(n, yaml.MappingNode):
            children = [x for pair in n.value for x in pair]
        if not done:
            sizes[id(n)] = (-1, -1)  # on the path: a node that contains itself is a cycle
            stack.append((n, True))
            for c in children:
                if sizes.get(id(c)) == (-1, -1):
                    raise ConfigError(f"{path}: a YAML node contains itself; refused")
                stack.append((c, False))
            continue
        got = [sizes[id(c)] for c in children]
        total = 1 + sum(s for s, _ in got)
        depth = 1 + max((d for _, d in got), default=0)
        if total > MAX_NODES or depth > MAX_DEPTH:
            raise ConfigError(f"{path}: YAML too large once its aliases are expanded or nested too deep "
                              f"(at most {MAX_NODES} values, {MAX_DEPTH} levels); refused")
        sizes[id(n)] = (total, depth)


def read_yaml(path: str | Path) -> Any:
    """Plain data from a YAML run file: no tags, nothing evaluated, within the budget."""
    path = Path(path)
    text = read_bytes(path)
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        loader = loader_cls(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_graph(node, path)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deep; refused") from None
    except (UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not a readable run file ({type(e).__name__})") from None


def _depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return True


def read_json(path: str | Path, limit: int | None = None) -> Any:
    """Plain data from a JSON run file, within the budget (NaN and Infinity as Python reads them)."""
    path = Path(path)
    text = read_bytes(path, limit)
    try:
        value = json.loads(text)
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deep; refused") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable JSON file ({type(e).__name__})") from None
    if not _depth_ok(value):
        raise ConfigError(f"{path}: JSON nested deeper than {MAX_DEPTH} levels; refused")
    return value
