"""Reading what a browser sends the console: forms and whole numbers, bounded and checked.

A console handler gets a dict or None (then answers 400), and numbers that fit the
database's 64-bit ids; anything else is refused with a log line rather than a 500.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs

from starlette.requests import Request

from bot.i18n import N_
from bot.numbers import typed_number

log = logging.getLogger(__name__)

# Ids are 64-bit in the database: a longer number names nothing (and SQLite cannot bind it).
MAX_ID = 2**63 - 1
NOT_A_FORM = N_("Refused: the console takes HTML forms (application/x-www-form-urlencoded).")
MAX_FIELDS = 200


async def read_form(request: Request) -> dict[str, str] | None:
    """The url-encoded body as a dict (first value of each field); None (and a log line)
    when it is not a form. Its size is bounded by PARLEY_HTTP_CONSOLE_MAX_BYTES."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    reason = ""
    if media_type != "application/x-www-form-urlencoded":
        reason = f"content type {media_type[:60]!r}"
    else:
        try:
            parsed = parse_qs(
                (await request.body()).decode("utf-8"),
                keep_blank_values=True,
                strict_parsing=False,
                errors="strict",
                max_num_fields=MAX_FIELDS,
            )
        except (UnicodeDecodeError, ValueError) as exc:
            reason = type(exc).__name__
        else:
            return {key: values[0] for key, values in parsed.items() if values}
    log.warning("console: refused a POST to %s with 400: %s", request.url.path, reason)
    return None


class BadQuery(ValueError):
    """A query parameter that should be a whole number is not one (answered with 400)."""


def query_int(request: Request, name: str) -> int | None:
    """A whole number from the query string, None when absent; BadQuery for anything
    else, "²" and 30-digit numbers included (`int()` takes the one, SQLite not the other)."""
    value = request.query_params.get(name, "")
    if not value:
        return None
    number = typed_number(value)
    if number is not None:
        return number
    raise BadQuery(f"{name} must be a whole number")


def page_number(request: Request) -> int:
    return max(1, min(query_int(request, "page") or 1, 100_000))
