"""Links put to a user to open (a tool's question in URL mode), read as a browser reads them.

A link is parsed by the WHATWG URL standard, the one browsers follow, through `ada_url`
(the parser Node.js uses): `https://evil.example\\@accounts.google.com/` opens
evil.example, because a backslash is a path separator in an https URL, while Python's
`urllib.parse` would name accounts.google.com. What the user is shown (the link and its
host) is the parser's normalised form, so the host is in ASCII: a name with non-Latin
letters appears as its punycode (`xn--…`), and `is_punycode` lets the question say so.

Only plain https links are put to a user. Refused, with the reason for the log: other
schemes (http included), credentials in the link (`user:password@`), backslashes,
whitespace or control characters anywhere (a browser drops tabs and newlines silently,
so they can hide what the link is), a link longer than MAX_URL, and anything the standard
cannot parse. The refusal is the caller's to answer.

`visible` makes a server's text safe to show beside it: bidirectional and other format
controls (which can reverse what a reader sees) and control characters are shown as
`<U+202E>` rather than acted on.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import ada_url

MAX_URL = 2000
# Format characters kept as they are: joiners that emoji and Indic scripts need.
_JOINERS = frozenset("\u200c\u200d")


@dataclass(frozen=True, slots=True)
class Link:
    """A link as a browser would open it: `href` (normalised: what is shown and opened),
    its `host` in ASCII, and `problem`: why it must not be put to a user ("" if fine)."""

    href: str
    host: str
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def is_punycode(self) -> bool:
        """The host has labels written in punycode (non-Latin letters, or lookalikes)."""
        return any(label.startswith("xn--") for label in self.host.split("."))


def inspect_link(url: str) -> Link:
    """`url` as a browser would open it, and whether it may be shown (see the module)."""
    if len(url) > MAX_URL:
        return Link("", "", f"longer than {MAX_URL} characters")
    if "\\" in url:
        return Link("", "", "a backslash in the link")
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        return Link("", "", "whitespace or control characters in the link")
    try:
        parsed = ada_url.URL(url)
    except ValueError:
        return Link("", "", "not a valid URL")
    host = parsed.hostname
    if parsed.protocol != "https:":
        return Link("", host, f"the scheme {parsed.protocol!r} (only https links are shown)")
    authority = re.split(r"[/?#]", url.partition("://")[2], maxsplit=1)[0]
    if parsed.username or parsed.password or "@" in authority:  # even an empty "user:@"
        return Link("", host, "credentials in the link")
    if not host:
        return Link("", "", "no host")
    return Link(parsed.href, host)


def visible(text: str, *, lines: bool = True) -> str:
    """`text` with control and format characters shown as `<U+XXXX>` instead of acted on
    (newlines kept when `lines`, tabs as spaces)."""
    out: list[str] = []
    for c in text:
        if c == "\n" and lines:
            out.append(c)
        elif c == "\t":
            out.append(" ")
        elif c in _JOINERS:
            out.append(c)
        elif unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co"):
            out.append(f"<U+{ord(c):04X}>")
        else:
            out.append(c)
    return "".join(out)
