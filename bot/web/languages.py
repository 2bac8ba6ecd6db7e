"""`ReaderLanguage`: the console's pages in the reader's language.

A `?lang=zh` (or `en`) switch is remembered in a cookie; without one, the browser's
Accept-Language decides, then PARLEY_LANGUAGE.
"""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.i18n import available_locales, normalize, use_locale

COOKIE = "parley_lang"
COOKIE_SECONDS = 365 * 24 * 3600


def known(tag: str) -> str | None:
    """The catalog locale `tag` names, or None if Parley has none for it."""
    locale = normalize(tag)
    # normalize() reads anything unknown as English: only an "en…" tag may mean it.
    if locale not in available_locales() or (locale == "en" and not tag.lower().startswith("en")):
        return None
    return locale


def from_accept_language(header: str) -> str | None:
    """The first language of an Accept-Language header Parley has a catalog for."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and quality > 0:
            ranked.append((-quality, index, tag))
    for _quality, _index, tag in sorted(ranked):
        locale = known(tag)
        if locale is not None:
            return locale
    return None


class ReaderLanguage:
    """ASGI middleware: each request runs in its reader's locale (see the module)."""

    def __init__(self, app: ASGIApp, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]
        }
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        switch = known(query.get("lang", [""])[0][:35])
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header: no remembered choice
            cookie = SimpleCookie()
        remembered = known(cookie[COOKIE].value[:35]) if COOKIE in cookie else None
        locale = (
            switch
            or remembered
            or from_accept_language(headers.get("accept-language", "")[:500])
            or self.default
        )

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                value = f"{COOKIE}={switch}; Path=/admin; Max-Age={COOKIE_SECONDS}; SameSite=Lax"
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"set-cookie", value.encode())]
            await send(message)

        with use_locale(locale):
            await self.app(scope, receive, send_with_cookie if switch else send)
