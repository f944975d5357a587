"""Text from a file, made inert before it reaches a terminal, a spreadsheet or Markdown.

A run's files may come from someone else: a value can hold terminal escape sequences (that move
the cursor, rewrite the screen or set the window title), rich markup (``[link=...]``), a
spreadsheet formula (``=HYPERLINK(...)`` runs when the CSV is opened) or Markdown that breaks out
of its code span. Each writer passes values through the one function for its medium."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: what a spreadsheet reads as the start of a formula (OWASP's list)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def printable(text: str) -> str:
    """``text`` with every control character (escape sequences, bidi overrides) written as an
    escape such as ``\\x1b``; newlines and tabs kept as escapes too, so one value is one line."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text.replace("\n", "\\n")
                        .replace("\t", "\\t"))


def terminal(text: str) -> str:
    """``text`` fit for a rich table: printable, and rich markup escaped (shown, not applied)."""
    from rich.markup import escape

    return escape(printable(text))


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string that starts like a formula gets a leading
    ``'``; numbers, and strings that are numbers (``-0.5``), stay as they are."""
    if not isinstance(value, str) or not value.startswith(_FORMULA):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def md_code(text: str) -> str:
    """``text`` as an inline Markdown code span that nothing in it can end: the fence is one
    backtick longer than the longest run of backticks inside, padded where it starts or ends
    with one; control characters escaped."""
    text = printable(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_text(text: str) -> str:
    """``text`` as plain Markdown text: characters that Markdown or HTML would act on escaped."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~])", r"\\\1", printable(text))
