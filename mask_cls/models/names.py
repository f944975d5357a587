"""timm's model names without importing timm (4 s on 2 cores): read from its source, where every
model is a ``@register_model`` function (and renamed ones are listed in
``register_model_deprecations``). The same suggestion for a misspelt name, before and after the
heavy import: names that start with what was typed first (``resnet10`` -> ``resnet10t``, a
variant, before ``resnet101``, another depth), then the closest spellings."""

from __future__ import annotations

import difflib
import functools
import importlib.util
import re
from collections.abc import Collection
from pathlib import Path

_REGISTERED = re.compile(r"@register_model\s*\n\s*def\s+(\w+)\s*\(")
_DEPRECATED = re.compile(r"register_model_deprecations\(\s*__name__\s*,\s*\{(.*?)\}\s*\)", re.S)
_OLD_NAME = re.compile(r"['\"]([\w.\-]+)['\"]\s*:")


@functools.cache
def timm_names() -> frozenset[str]:
    """Every model name timm registers (empty if its source cannot be read: then no early check)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or spec.origin is None:
        return frozenset()
    names: set[str] = set()
    for path in (Path(spec.origin).parent / "models").rglob("*.py"):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        names.update(_REGISTERED.findall(text))
        for block in _DEPRECATED.findall(text):
            names.update(n.split(".", 1)[0] for n in _OLD_NAME.findall(block))
    return frozenset(names)


def suggestion(name: str, known: Collection[str], n: int = 5) -> str:
    """`` (did you mean: a, b, c)``, or an empty string."""
    def rank(k: str) -> tuple:  # resnet10 -> resnet10t (a variant) before resnet101 (another number)
        grows_number = name[-1:].isdigit() and k[len(name):len(name) + 1].isdigit()
        return grows_number, len(k), k

    prefix = sorted((k for k in known if k.startswith(name)), key=rank)
    close = [k for k in difflib.get_close_matches(name, list(known), n=n, cutoff=0.6) if k not in prefix]
    picks = (prefix + close)[:n]
    return f" (did you mean: {', '.join(picks)})" if picks else ""
