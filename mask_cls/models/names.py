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


#: characters typed for one another (a letter for a digit): a substitution among them costs little
LOOK_ALIKE = {frozenset(p) for p in ("o0", "l1", "i1", "s5", "z2", "b8")}


def distance(a: str, b: str) -> float:
    """Edit distance where swapping look-alike characters (``bo`` for ``b0``) costs 0.2."""
    prev = [float(j) for j in range(len(b) + 1)]
    for i, ca in enumerate(a, 1):
        cur = [float(i)]
        for j, cb in enumerate(b, 1):
            swap = 0.0 if ca == cb else 0.2 if frozenset((ca, cb)) in LOOK_ALIKE else 1.0
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + swap))
        prev = cur
    return prev[-1]


def suggestion(name: str, known: Collection[str], n: int = 5) -> str:
    """`` (did you mean: a, b, c)``, or an empty string."""
    def rank(k: str) -> tuple:  # resnet10 -> resnet10t (a variant) before resnet101 (another number)
        grows_number = name[-1:].isdigit() and k[len(name):len(name) + 1].isdigit()
        return grows_number, len(k), k

    prefix = sorted((k for k in known if k.startswith(name)), key=rank)
    close = [k for k in difflib.get_close_matches(name.lower(), list(known), n=4 * n, cutoff=0.6) if k not in prefix]
    close.sort(key=lambda k: (distance(name.lower(), k), len(k), k))  # a look-alike typo first
    picks = (prefix + close)[:n]
    return f" (did you mean: {', '.join(picks)})" if picks else ""
