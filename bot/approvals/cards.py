"""Approval cards as text: within a platform's limit, and whole for "Show all".

A card (bot/toolkit/core.py `ApprovalCard`) is rendered with the first lines of its long text
and bounded one-line values, shortened step by step until it fits the limit the platform
gives (Telegram counts UTF-16 code units, Slack characters), so a platform never sees a
question it would refuse; whatever was shortened is in `full_card_text`, which
`split_parts` cuts into messages the platform accepts.

What a card shows is what the call does, not what its arguments make it look like: bidi
controls (U+202E turns "gnp.exe" around), zero-width and other invisible characters are
shown as `\u202e` escapes, and the domain of an email address with non-ASCII letters is
shown in ASCII (punycode), so "bücher.example" cannot pass for a look-alike.
"""

from __future__ import annotations

import re

from bot.i18n import N_, _
from bot.surface import Measure, RenderedCard
from bot.toolkit import ApprovalCard

VALUE_CHARS = 200  # one line of a card (To, Subject, an argument) at most
BODY_LINES = 6  # the first lines of a long text that a card shows
BODY_CHARS = 600
CARD_DETAILS = 20
SHORTENED = N_("(Shortened: “Show all” sends you the whole of it.)")


# Bidi embeddings, overrides and isolates, the marks, zero-width and invisible operators,
# the byte-order mark, and control characters other than line breaks and tabs.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_ADDRESS = re.compile(r"([^\s@<>,;:\"'()]+)@([^\s@<>,;:\"'()]+)")


def _ascii_domain(match: re.Match[str]) -> str:
    local, domain = match.group(1), match.group(2)
    if domain.isascii():
        return match.group(0)
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:  # not a domain IDNA can spell: show its code points instead
        return f"{local}@{domain.encode('ascii', 'backslashreplace').decode('ascii')}"


def visible(value: str) -> str:
    """`value` as a card shows it: invisible and direction-changing characters escaped
    (`\u202e`), email domains in ASCII."""
    value = _ADDRESS.sub(_ascii_domain, value)
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", value)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def _bounded(value: str, chars: int) -> tuple[str, bool]:
    flat = _one_line(value)
    if len(flat) <= chars:
        return flat, False
    return flat[: chars - 1].rstrip() + "…", True


def _excerpt(body: str, lines: int, chars: int) -> tuple[str, bool]:
    kept = body.strip("\n").splitlines()[:lines]
    text = "\n".join(kept)
    cut = len(kept) < len(body.strip("\n").splitlines())
    if len(text) > chars:
        text, cut = text[: chars - 1].rstrip() + "…", True
    elif cut:
        text += "\n…"
    return text, cut


def render_card(
    card: ApprovalCard, tool: str, *, limit: int, measure: Measure = len
) -> RenderedCard:
    """The card as plain text of at most `limit` (by `measure`), and whether it was cut.

    Shorter excerpts are tried until it fits; what never fits is cut at the limit."""
    for body_lines, body_chars, value_chars in (
        (BODY_LINES, BODY_CHARS, VALUE_CHARS),
        (3, 300, 120),
        (1, 120, 60),
        (0, 0, 40),
    ):
        text, cut = _card_text(card, tool, body_lines, body_chars, value_chars)
        if measure(text) <= limit:
            return RenderedCard(text, cut)
    marker = "…"
    while text and measure(text + marker) > limit:
        text = text[: max(0, len(text) - max(1, len(text) // 10))]
    return RenderedCard(text + marker, True)


def _card_text(
    card: ApprovalCard, tool: str, body_lines: int, body_chars: int, value_chars: int
) -> tuple[str, bool]:
    cut = False
    out = [_(card.title, tool=tool) if "{tool}" in card.title else _(card.title)]
    for label, value in card.lines:
        shown, shortened = _bounded(visible(value), value_chars)
        cut |= shortened
        out.append(f"{_(label)}: {shown}")
    for key, value in card.details[:CARD_DETAILS]:
        shown, shortened = _bounded(visible(value), value_chars)
        cut |= shortened
        out.append(f"{_bounded(visible(key), 64)[0]}: {shown}")
    if len(card.details) > CARD_DETAILS:
        cut = True
        out.append(_("… and {count} more", count=len(card.details) - CARD_DETAILS))
    if card.body:
        out.append("")
        out.append(
            _("{label} ({count} characters):", label=_(card.body_label), count=len(card.body))
        )
        if body_lines:
            excerpt, shortened = _excerpt(visible(card.body), body_lines, body_chars)
            out.append(excerpt)
            cut |= shortened
        else:
            cut = True
    if cut:
        out.append("")
        out.append(_(SHORTENED))
    return "\n".join(out), cut


def full_card_text(card: ApprovalCard, tool: str) -> str:
    """Everything the card stands for, unshortened (for "Show all")."""
    out = [_(card.title, tool=tool) if "{tool}" in card.title else _(card.title)]
    out += [f"{_(label)}: {visible(value)}" for label, value in card.lines]
    out += [f"{visible(key)}: {visible(value)}" for key, value in card.details]
    if card.body:
        out += ["", f"{_(card.body_label)}:", visible(card.body)]
    return "\n".join(out)


def split_parts(text: str, limit: int, measure: Measure = len) -> list[str]:
    """`text` in parts of at most `limit` each, cut at line ends where possible."""
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        if measure(current + line) <= limit:
            current += line
            continue
        if current:
            parts.append(current)
            current = ""
        while measure(line) > limit:
            size = min(len(line), limit)
            while size > 1 and measure(line[:size]) > limit:
                size -= 1
            parts.append(line[:size])
            line = line[size:]
        current = line
    if current:
        parts.append(current)
    return [part.rstrip("\n") or "…" for part in parts] or [""]
