"""Console sessions: a random token in a cookie, the session itself in the database.

Signing out deletes the row, so a copied cookie stops working on every replica. A
session ends after PARLEY_CONSOLE_SESSION_HOURS unused, and at the latest
PARLEY_CONSOLE_SESSION_MAX_HOURS after sign-in however busy it is; changing
PARLEY_ADMIN_PASSWORD ends them all: each row names the password it was opened with by a
tag, scrypt of the password under a random salt of that session's (`s$<salt>$<key>`), so
a reader of the table (or of a log) cannot test password guesses cheaply or compare
rows. Every replica can check a row from its salt; each replica derives a session's key
once and keeps it.

The cookie is HttpOnly, SameSite=Strict, limited to /admin, and Secure by the rule of
PARLEY_CONSOLE_SECURE_COOKIE (auto: when PARLEY_PUBLIC_URL is https, or the request
came over https). Before sign-in there is no session, so the sign-in form's CSRF token is
a second cookie of its own that the form must repeat.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections import OrderedDict
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


# scrypt's cost: 16 MiB and tens of milliseconds per guess (RFC 7914's interactive figures).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES, KEY_BYTES = 12, 24  # the tag fits the 64 characters of its column
_KNOWN_SALTS = 1024


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def password_tag(password: bytes, salt: bytes) -> str:
    """The tag of `password` under `salt`: `s$<salt>$<scrypt key>` (base64url)."""
    key = hashlib.scrypt(password, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES)
    return f"s${_b64(salt)}${_b64(key)}"


def _salt_of(tag: str) -> bytes | None:
    kind, _, rest = tag.partition("$")
    salt, _, _key = rest.partition("$")
    if kind != "s" or not salt:
        return None
    try:
        decoded = base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4))
    except ValueError:
        return None
    return decoded if len(decoded) == SALT_BYTES else None


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
        self._password = settings.console_password.get_secret_value().encode("utf-8")
        # salt -> this password's tag under it: scrypt once per session and replica.
        self._tags: OrderedDict[bytes, str] = OrderedDict()

    async def _tag(self, salt: bytes) -> str:
        tag = self._tags.get(salt)
        if tag is None:
            tag = await asyncio.to_thread(password_tag, self._password, salt)
            self._tags[salt] = tag
            if len(self._tags) > _KNOWN_SALTS:
                self._tags.popitem(last=False)
        else:
            self._tags.move_to_end(salt)
        return tag

    async def _opened_with_this_password(self, tag: str) -> bool:
        salt = _salt_of(tag)
        return salt is not None and hmac.compare_digest(tag, await self._tag(salt))

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
        if found is None or not await self._opened_with_this_password(found.password_tag):
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
            password_tag=await self._tag(secrets.token_bytes(SALT_BYTES)),
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
