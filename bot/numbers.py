"""Numbers people type: `/forget 3`, `/tools revoke 12`, a budget in the console.

`str.isdigit()` is true for "²" and for Arabic-Indic digits (which `int()` refuses or
reads), and `int()` takes a 25-digit number that no database column holds: both ended in
a traceback and no answer. A typed number is ASCII digits only, at most 18 of them (it
fits a signed 64-bit column), or it is not a number, and the caller says what it wanted.
"""

from __future__ import annotations

MAX_DIGITS = 18


def typed_number(text: str) -> int | None:
    """The whole number of 0 or more that `text` (trimmed) is, or None."""
    text = text.strip()
    if not text or len(text) > MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return int(text)
