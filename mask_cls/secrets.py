"""Values of keys that look like secrets (an API key typed on the command line) never reach a
file the run writes: the saved config, Hydra's own files, the loggers' copy."""

from __future__ import annotations

import re

SECRET_WORDS = ("key", "token", "secret", "password", "passwd")
MASK = "***"
#: ``key=value`` inside a text (an override, Hydra's ``override_dirname``): the value runs to the
#: end of the text or to the next ``, key=`` / `` key=`` (a secret may hold spaces and commas)
_ASSIGN = re.compile(r"(?P<k>[+~]*[A-Za-z_][\w./@-]*)=(?P<v>.*?)(?=[,\s]+[+~]*[A-Za-z_][\w./@-]*=|$)", re.S)
#: the password of a URL: ``scheme://user:PASSWORD@host``
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<pw>[^@\s]+)(?=@)")


def is_secret_key(key) -> bool:
    """Whether any part of a (dotted) key names a secret: ``logger.wandb.api_key``,
    ``secrets.wandb.user``."""
    parts = re.split(r"[./]", str(key).lstrip("+~").lower())
    return any(w in part for part in parts for w in SECRET_WORDS)


def mask_text(text: str) -> str:
    """``text`` with the value of every ``secret_key=value`` in it masked to its end, and the
    password of every URL in it masked."""
    def sub(m: re.Match) -> str:
        return f"{m['k']}={MASK}" if is_secret_key(m["k"]) and m["v"] else m[0]

    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, _ASSIGN.sub(sub, text))


def mask(node):
    """A plain container with secret-looking keys' values and ``key=value`` texts masked."""
    if isinstance(node, dict):
        return {k: MASK if is_secret_key(k) and v not in (None, "", [], {}) else mask(v) for k, v in node.items()}
    if isinstance(node, list):
        return [mask(v) for v in node]
    if isinstance(node, str):
        return mask_text(node)
    return node
