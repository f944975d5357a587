"""The one line for a data root that is not there: the nearest existing folder beside it (a typo
in the last part), so the fix is in the message."""

from __future__ import annotations

import difflib
import os
from pathlib import Path


def missing_root(root: str | Path) -> str:
    """``<root>: data.root not found``, with ``(did you mean <sibling>?)`` where a folder beside it
    has a close name."""
    root = Path(root)
    hint = ""
    try:
        siblings = [e.name for e in os.scandir(root.parent) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        siblings = []
    close = difflib.get_close_matches(root.name, siblings, n=1, cutoff=0.6)
    if close:
        hint = f" (did you mean data.root={root.parent / close[0]}?)"
    return f"{root}: data.root not found{hint}"
