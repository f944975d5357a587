"""Values of keys that look like secrets (an API key typed on the command line) never reach a
file the run writes: the saved config, Hydra's own files, the loggers' copy."""

from __future__ import annotations

import re

SECRET_WORDS = ("key", "token", "secret", "password", "passwd")
MASK = "***"
#: ``key=value`` inside a text (an override, Hydra's ``override_dirname``)
_ASSIGN = re.compile(r"(?P<k>[+~]*[A-Za-z_][\w./@-]*)=(?P<v>[^,\s\]]*)")


def is_secret_key(key) -> bool:
    """Whether the last part of a (dotted) key names a secret: ``logger.wandb.api_key``."""
    last = str(key).rsplit(".", 1)[-1].rsplit("/", 1)[-1].lower()
    return any(w in last for w in SECRET_WORDS)


def mask_text(text: str) -> str:
    """``text`` with the value of every ``secret_key=value`` in it masked."""
    def sub(m: re.Match) -> str:
        return f"{m['k']}={MASK}" if is_secret_key(m["k"].lstrip("+~")) and m["v"] else m[0]

    return _ASSIGN.sub(sub, text)


def mask(node):
    """A plain container with secret-looking keys' values and ``key=value`` texts masked."""
    if isinstance(node, dict):
        return {k: MASK if is_secret_key(k) and v not in (None, "") else mask(v) for k, v in node.items()}
    if isinstance(node, list):
        return [mask(v) for v in node]
    if isinstance(node, str):
        return mask_text(node)
    return node
