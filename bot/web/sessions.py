"""Console sessions: a random token in a cookie, the session itself in the database.

Signing out deletes the row, so a copied cookie stops working on every replica. A
session ends after PARLEY_CONSOLE_SESSION_HOURS unused, and at the latest
PARLEY_CONSOLE_SESSION_MAX_HOURS after sign-in however busy it is; changing
PARLEY_ADMIN_PASSWORD ends them all (each row names the password it was opened with).

The cookie is HttpOnly, SameSite=Strict, limited to /admin, and Secure by the rule of
PARLEY_CONSOLE_SECURE_COOKIE (auto: when PARLEY_PUBLIC_URL is https, or the request
came over https). Before sign-in there is no session, so the sign-in form's CSRF token is
a second cookie of its own that the form must repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from bot.config import AdminSettings
from bot.storage.sessions import ConsoleSessionStore, LiveSession
from bot.web.clients import ClientResolver

COOKIE = "parley_console"
LOGIN_COOKIE = "parley_console_login"
PATH = "/admin"
# Each request would otherwise be a write: the idle clock is moved at most this often.
TOUCH_EVERY = timedelta(seconds=60)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ConsoleSessions:
    """Opens, finds and ends console sessions, and sets their cookies."""

    def __init__(
        self,
        settings: AdminSettings,
        store: ConsoleSessionStore,
        clients: ClientResolver,
        *,
        public_url: str = "",
    ) -> None:
        if settings.console_password is None:
            raise ValueError("the console needs PARLEY_ADMIN_PASSWORD")
        self.store = store
        self.clients = clients
        self.idle = timedelta(hours=settings.console_session_hours)
        self.lifetime = timedelta(hours=settings.console_session_max_hours)
        self.secure_setting = settings.console_secure_cookie
        self.public_https = public_url.lower().startswith("https://")
        password = settings.console_password.get_secret_value().encode("utf-8")
        self.password_tag = hmac.new(password, b"parley-console-session", "sha256").hexdigest()

    def secure(self, request: Request) -> bool:
        """Whether cookies set in answer to `request` are Secure."""
        if self.secure_setting != "auto":
            return self.secure_setting == "true"
        return self.public_https or self.clients.scheme(request.scope) == "https"

    # -- signed-in sessions ----------------------------------------------------------------

    async def current(self, request: Request) -> LiveSession | None:
        token = request.cookies.get(COOKIE, "")
        if not token or len(token) > 128:
            return None
        found = await self.store.find(_hash(token), idle=self.idle)
        if found is None or not hmac.compare_digest(found.password_tag, self.password_tag):
            return None
        seen = found.seen_at if found.seen_at.tzinfo else found.seen_at.replace(tzinfo=UTC)
        if datetime.now(UTC) - seen >= min(TOUCH_EVERY, self.idle / 10):
            await self.store.touch(found.token_hash)
        return found

    async def start(self, request: Request, response: Response, client: str) -> None:
        """Open a session for the admin who just signed in; its cookie goes on `response`."""
        token = secrets.token_urlsafe(32)
        await self.store.create(
            token_hash=_hash(token),
            csrf=secrets.token_urlsafe(32),
            password_tag=self.password_tag,
            client=client,
            lifetime=self.lifetime,
            idle=self.idle,
        )
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(self.lifetime.total_seconds()),
            path=PATH,
            secure=self.secure(request),
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(LOGIN_COOKIE, path=PATH)

    async def end(self, request: Request, response: Response) -> None:
        token = request.cookies.get(COOKIE, "")
        if token:
            await self.store.delete(_hash(token))
        response.delete_cookie(
            COOKIE, path=PATH, secure=self.secure(request), httponly=True, samesite="strict"
        )

    # -- the sign-in form's CSRF token -------------------------------------------------------

    def login_token(self, request: Request) -> tuple[str, bool]:
        """The sign-in form's token, and whether it is new (then `set_login_token`)."""
        token = request.cookies.get(LOGIN_COOKIE, "")
        if 20 <= len(token) <= 64:
            return token, False
        return secrets.token_urlsafe(32), True

    def set_login_token(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=3600,
            path=PATH,
            secure=self.secure(request),
            httponly=True,
            samesite="strict",
        )

    def login_token_ok(self, request: Request, given: str) -> bool:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        return bool(expected) and secrets.compare_digest(expected, given)
