"""Model Markdown to Telegram HTML, and long answers to message-sized parts.

Telegram rejects a whole message when its entities do not parse, so the renderer only
emits tags it can prove balanced: code spans and links become opaque placeholders first,
bold and italic never cross another tag, and `is_balanced` checks the result once more.
Anything it cannot express stays as literal text. `split_markdown` cuts the source, not
the HTML, so every part renders on its own (code fences are closed and reopened).
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

# Visible length of a message after entity parsing, in UTF-16 code units.
MESSAGE_LIMIT = 4096
# Parts are cut below the limit: a heading's "#" or a bullet may render a little longer.
PART_LIMIT = 3900

_FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)(?:^```[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)([^\n]+?)(?<=\S)\*\*|__(?=\S)([^\n]+?)(?<=\S)__")
_ITALIC = re.compile(
    r"(?<![\w*])\*(?=[^\s*])([^*<>\n]+?)(?<=[^\s*])\*(?![\w*])"
    r"|(?<![\w_])_(?=[^\s_])([^_<>\n]+?)(?<=[^\s_])_(?![\w_])"
)
_STRIKE = re.compile(r"~~(?=\S)([^~<>\n]+?)(?<=\S)~~")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.MULTILINE)
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")

ALLOWED_TAGS = frozenset({"b", "i", "s", "u", "code", "pre", "a", "blockquote", "tg-spoiler"})


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def markdown_to_html(text: str) -> str:
    """Render the Markdown a model writes as Telegram HTML (parse_mode="HTML")."""
    atoms: list[str] = []

    def keep(rendered: str) -> str:
        atoms.append(rendered)
        return f"\x00{len(atoms) - 1}\x00"

    def fence(match: re.Match[str]) -> str:
        language, body = match.group(1), match.group(2).rstrip("\n")
        attribute = f' class="language-{_escape(language)}"' if language else ""
        return keep(f"<pre><code{attribute}>{_escape(body)}</code></pre>")

    text = text.replace("\x00", "")
    text = _FENCE.sub(fence, text)
    text = _INLINE_CODE.sub(lambda m: keep(f"<code>{_escape(m.group(1))}</code>"), text)
    text = _LINK.sub(
        lambda m: keep(
            f'<a href="{html.escape(m.group(2), quote=True)}">{_escape(m.group(1))}</a>'
        ),
        text,
    )
    text = _escape(text)
    text = _HEADING.sub(lambda m: f"<b>{m.group(1).replace('**', '').replace('__', '')}</b>", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _BOLD.sub(lambda m: f"<b>{m.group(1) or m.group(2)}</b>", text)
    text = _ITALIC.sub(lambda m: f"<i>{m.group(1) or m.group(2)}</i>", text)
    text = _STRIKE.sub(lambda m: f"<s>{m.group(1)}</s>", text)
    rendered = _PLACEHOLDER.sub(lambda m: atoms[int(m.group(1))], text)
    return rendered if is_balanced(rendered) else _escape(_PLACEHOLDER.sub("", text))


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ok = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            self.ok = False
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.ok = False


def is_balanced(markup: str) -> bool:
    """True when every tag is one Telegram knows and tags nest properly."""
    checker = _TagChecker()
    checker.feed(markup)
    checker.close()
    return checker.ok and not checker.stack


def visible_text(markup: str) -> str:
    """What a reader sees of `markup`: the text without tags, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def split_markdown(text: str, limit: int = PART_LIMIT) -> list[str]:
    """Cut `text` into parts of at most `limit` UTF-16 units, at paragraph boundaries if
    possible, else at line ends, else at spaces; a cut inside a code fence closes the
    fence and reopens it in the next part."""
    text = text.strip()
    if utf16_len(text) <= limit:
        return [text] if text else []
    parts: list[str] = []
    rest = text
    while rest:
        if utf16_len(rest) <= limit:
            parts.append(rest)
            break
        head = _cut(rest, limit - 8)  # room for a closing fence
        rest = rest[len(head) :].lstrip("\n")
        fence = _open_fence(head)
        if fence is not None:
            head = head.rstrip("\n") + "\n```"
            rest = f"{fence}\n{rest}"
        parts.append(head.rstrip())
    return [part for part in parts if part.strip()]


def _cut(text: str, limit: int) -> str:
    """The longest prefix within `limit` that ends at the best boundary available."""
    window = text[: _index_for_units(text, limit)]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > len(window) // 3:
            return window[: at + len(separator)]
    return window


def _index_for_units(text: str, units: int) -> int:
    count = 0
    for index, char in enumerate(text):
        count += 2 if ord(char) > 0xFFFF else 1
        if count > units:
            return index
    return len(text)


def _open_fence(text: str) -> str | None:
    """The opening line of a code fence left open at the end of `text`, if any."""
    opening: str | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            opening = None if opening is not None else line.strip()
    return opening
