"""A form's values checked before they go back to the tool that asked (bot/approvals/questions.py).

An MCP server's form (elicitation) says what each value must be: a whole number or any
number within `minimum`/`maximum`, text of `min_length`..`max_length` characters, an email
address, a web address, a date or a date and time (`format`), text matching a `pattern`,
between `min_items` and `max_items` choices. A server refuses an answer that breaks them
and the whole tool call fails, so every value is checked here first, written once for
every platform; `problem` gives the reason in the reader's language, and the question
asks again.

Typed numbers are read strictly: ASCII digits (full-width ones, as a Chinese keyboard
types them, count as theirs), never "²" or other digits Python's `int` would take. A
pattern is a server's regular expression, run by `regex` with a time limit, since a
hostile one could otherwise take the process's time (catastrophic backtracking).
"""

from __future__ import annotations

import logging
import math
import re
from datetime import date, datetime

import ada_url
import regex

from bot.domain import InputField, InputFieldKind, InputValue
from bot.i18n import _, ngettext

log = logging.getLogger(__name__)

MAX_TYPED = 2000  # characters of a typed value when the field sets no maximum
MAX_PATTERN = 500
PATTERN_SECONDS = 0.05
# Full-width digits, "+", "-", "." and "e"/"E" (U+FF10…) as their ASCII selves.
_FULL_WIDTH = {0xFF10 + n: 0x30 + n for n in range(10)} | {
    0xFF0B: 0x2B,
    0xFF0D: 0x2D,
    0xFF0E: 0x2E,
    0xFF45: 0x65,
    0xFF25: 0x45,
}
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]{1,30}(?:\.[0-9]{0,30})?|\.[0-9]{1,30})(?:[eE][+-]?[0-9]{1,3})?"
)
# An address as people type one: something, one @, a domain with a dot; no spaces.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(?:\.[^@\s.]+)+")
_WEB_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})  # the WHATWG's, with hosts
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


class NotAValue(ValueError):
    """A typed reply that is not a value of its field; `reason` is for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse(field: InputField, text: str) -> InputValue:
    """A typed reply as the field's value (checked with `problem` next)."""
    text = text.strip()
    if not text:
        raise NotAValue(_("Type a value, or press one of the buttons."))
    if field.kind is InputFieldKind.INTEGER:
        digits = text.translate(_FULL_WIDTH)
        if not _INTEGER.fullmatch(digits):
            raise NotAValue(_("Type a whole number, like 42."))
        return int(digits)
    if field.kind is InputFieldKind.NUMBER:
        digits = text.translate(_FULL_WIDTH)
        if not _NUMBER.fullmatch(digits):
            raise NotAValue(_("Type a number, like 3.5."))
        number = float(digits)
        if not math.isfinite(number):
            raise NotAValue(_("Type a number, like 3.5."))
        return int(digits) if _INTEGER.fullmatch(digits) else number
    if field.kind is InputFieldKind.TEXT:
        if field.limits.format == "date-time" and text[10:11] == " ":
            text = f"{text[:10]}T{text[11:]}"  # the space people type for JSON's "T"
        return text
    raise NotAValue(_("Press one of the buttons."))


def problem(field: InputField, value: InputValue) -> str:
    """Why `value` cannot go back for `field` ("" when it can), for the user."""
    limits = field.limits
    if field.kind is InputFieldKind.MULTI_CHOICE:
        if not isinstance(value, list) or not set(value) <= {c.value for c in field.choices}:
            return _("Choose from the options shown.")
        if limits.min_items is not None and len(value) < limits.min_items:
            return ngettext(
                "Choose at least {count} option.",
                "Choose at least {count} options.",
                limits.min_items,
            )
        if limits.max_items is not None and len(value) > limits.max_items:
            return ngettext(
                "Choose at most {count} option.",
                "Choose at most {count} options.",
                limits.max_items,
            )
        return ""
    if field.kind is InputFieldKind.CHOICE:
        ok = isinstance(value, str) and value in {c.value for c in field.choices}
        return "" if ok else _("Choose one of the options shown.")
    if field.kind is InputFieldKind.BOOLEAN:
        return "" if isinstance(value, bool) else _("Answer yes or no.")
    if field.kind in (InputFieldKind.INTEGER, InputFieldKind.NUMBER):
        return _number_problem(field, value)
    if not isinstance(value, str):
        return _("Type some text.")
    return _text_problem(field, value)


def _number_problem(field: InputField, value: InputValue) -> str:
    limits = field.limits
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _("Type a number, like 3.5.")
    if field.kind is InputFieldKind.INTEGER and not isinstance(value, int):
        return _("Type a whole number, like 42.")
    if limits.minimum is not None and value < limits.minimum:
        return _("The smallest allowed is {minimum}.", minimum=_plain(limits.minimum))
    if limits.maximum is not None and value > limits.maximum:
        return _("The largest allowed is {maximum}.", maximum=_plain(limits.maximum))
    return ""


def _text_problem(field: InputField, value: str) -> str:
    limits = field.limits
    if limits.min_length is not None and len(value) < limits.min_length:
        count = limits.min_length
        return ngettext(
            "Use at least {count} character.", "Use at least {count} characters.", count
        )
    longest = limits.max_length if limits.max_length is not None else MAX_TYPED
    if len(value) > longest:
        return ngettext(
            "Use at most {count} character.", "Use at most {count} characters.", longest
        )
    if limits.format == "email" and not _EMAIL.fullmatch(value):
        return _("Type an email address, like name@example.com.")
    if limits.format == "uri" and not _is_uri(value):
        return _("Type a full web address, like https://example.com.")
    if limits.format == "date" and not _is_date(value):
        return _("Type a date as year-month-day, like 2026-12-31.")
    if limits.format == "date-time" and not _is_date_time(value):
        return _("Type a date and time with its time zone, like 2026-12-31T18:30:00+08:00.")
    if limits.pattern and not _matches(limits.pattern, value):
        return _("That is not in the form asked for.")
    return ""


def _is_uri(value: str) -> bool:
    """An absolute URI; a web one (http, https…) as a browser reads it, with a host."""
    if not _URI.fullmatch(value):
        return False
    if value.split(":", 1)[0].lower() not in _WEB_SCHEMES:
        return True
    try:
        return bool(ada_url.URL(value).hostname)
    except ValueError:
        return False


def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_date_time(value: str) -> bool:
    if not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _matches(pattern: str, value: str) -> bool:
    """The server's pattern (a JSON Schema one: unanchored) against `value`; a pattern
    that cannot be run here (too long, not one `regex` reads, too slow) is the server's
    to check, and logged."""
    if len(pattern) > MAX_PATTERN:
        log.info("a form's pattern is longer than %d characters; left to the server", MAX_PATTERN)
        return True
    try:
        return regex.search(pattern, value, timeout=PATTERN_SECONDS) is not None
    except regex.error:
        log.info("a form's pattern is not one this reads; left to the server")
    except TimeoutError:
        log.warning("a form's pattern took too long to match; left to the server")
    return True


def _plain(number: int | float) -> str:
    return str(int(number)) if isinstance(number, float) and number.is_integer() else str(number)


def shown(field: InputField, value: InputValue) -> str:
    """`value` as the user knows it: a choice's title, Yes or No."""
    titles = {choice.value: choice.label for choice in field.choices}
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, list):
        return ", ".join(titles.get(item, item) for item in value)
    if isinstance(value, str):
        return titles.get(value, value)
    return _plain(value)
