"""The admin web console under /admin: server-rendered pages, no JavaScript needed.

Sign-in takes PARLEY_ADMIN_PASSWORD: both sides are hashed (SHA-256) and compared in
constant time; five wrong passwords from one address lock it out for up to 5 minutes.
The session lives in a signed cookie (itsdangerous through Starlette's SessionMiddleware,
keyed from the password, so changing it signs everyone out). Every POST carries the
session's CSRF token; a missing or wrong one is refused with 403. Every change goes
through `Administration` or `AdminStore` and into the audit log with the surface
"console".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from bot.admin import Administration, UnknownTool
from bot.config import AdminSettings
from bot.domain import ChatKind, ChatRef, UserRef
from bot.storage.admin import LIMIT_KEYS, AdminStore
from bot.web.overview import Overview

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
ACTOR = "console:admin"
SURFACE = "console"
MAX_FAILURES = 5  # wrong passwords from one address...
FAILURE_WINDOW = 300.0  # ...within this many seconds lock it out until the oldest expires
CHART_CACHE_SECONDS = 60.0
CHART_COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1")


class Reminders(Protocol):
    async def cancel(self, user: UserRef | None, reminder_id: int) -> bool: ...


Handler = Callable[[Request], Awaitable[Response]]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class Console:
    def __init__(
        self,
        *,
        settings: AdminSettings,
        store: AdminStore,
        admin: Administration,
        reminders: Reminders | None = None,
        overview: Overview | None = None,
    ) -> None:
        if settings.console_password is None or not settings.console_password.get_secret_value():
            raise ValueError("the console needs PARLEY_ADMIN_PASSWORD")
        password = settings.console_password.get_secret_value()
        self.settings = settings
        self.store = store
        self.admin = admin
        self.reminders = reminders
        self.overview = overview
        self._password_digest = _digest(password)
        self._failures: dict[str, list[float]] = {}
        self._chart: tuple[float, list[tuple[str, str, int]]] | None = None
        self._session_key = hmac.new(
            password.encode("utf-8"), b"parley-console-session", hashlib.sha256
        ).hexdigest()
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True),
            auto_reload=False,
        )

    # -- routing ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        signed_in = self._signed_in
        app = Starlette(
            routes=[
                Route("/", signed_in(self.home)),
                Route("/login", self.login_page, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", self._checked(self.logout), methods=["POST"]),
                Route("/channels", signed_in(self.channels)),
                Route("/channels/{id:int}", signed_in(self.channel)),
                Route(
                    "/channels/{id:int}/tools",
                    signed_in(self._checked(self.toggle_tool)),
                    methods=["POST"],
                ),
                Route(
                    "/channels/{id:int}/settings",
                    signed_in(self._checked(self.channel_settings)),
                    methods=["POST"],
                ),
                Route("/users", signed_in(self.users)),
                Route(
                    "/users/{id:int}/timezone",
                    signed_in(self._checked(self.user_timezone)),
                    methods=["POST"],
                ),
                Route("/conversations", signed_in(self.conversations)),
                Route("/conversations/{id:int}", signed_in(self.conversation)),
                Route("/reminders", signed_in(self.reminders_page)),
                Route(
                    "/reminders/{id:int}/cancel",
                    signed_in(self._checked(self.cancel_reminder)),
                    methods=["POST"],
                ),
                Route("/audit", signed_in(self.audit)),
                Route("/usage", signed_in(self.usage)),
                *(
                    [Route("/overview", signed_in(self.overview_page))]
                    if self.overview is not None
                    else []
                ),
            ],
            middleware=[
                Middleware(
                    SessionMiddleware,
                    secret_key=self._session_key,
                    session_cookie="parley_console",
                    max_age=int(self.settings.console_session_hours * 3600),
                    path="/admin",
                    same_site="strict",
                )
            ],
        )
        return [Mount("/admin", app=app)]

    def _signed_in(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            if not request.session.get("admin"):
                return RedirectResponse("/admin/login", status_code=303)
            return await handler(request)

        return guarded

    def _checked(self, handler: Handler) -> Handler:
        """Refuse a POST whose CSRF token is missing or not this session's."""

        async def guarded(request: Request) -> Response:
            form = await _form(request)
            expected = str(request.session.get("csrf", ""))
            given = form.get("csrf", "")
            if not expected or not secrets.compare_digest(expected, given):
                log.warning(
                    "console: refused a POST to %s without a valid CSRF token", request.url.path
                )
                return HTMLResponse(
                    "Refused: this form has expired or did not come from the console. "
                    "Go back, reload the page and try again.",
                    status_code=403,
                )
            request.state.form = form
            return await handler(request)

        return guarded

    def _render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)
        html = self.env.get_template(name).render(
            csrf=request.session["csrf"],
            signed_in=bool(request.session.get("admin")),
            path=request.url.path,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    # -- sign-in ---------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        landing = "/admin/overview" if self.overview is not None else "/admin/channels"
        return RedirectResponse(landing, status_code=303)

    async def overview_page(self, request: Request) -> Response:
        if self.overview is None:  # the route exists only with an overview
            return RedirectResponse("/admin/channels", status_code=303)
        return await self.overview.page(request, self._render)

    async def login_page(self, request: Request) -> Response:
        return self._render(request, "login.html", error="")

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        expected = str(request.session.get("csrf", ""))
        if not expected or not secrets.compare_digest(expected, form.get("csrf", "")):
            return self._render(
                request, "login.html", status_code=403, error="The form expired: try again."
            )
        client = request.client.host if request.client else "?"
        wait = self._throttled(client)
        if wait:
            log.warning("console: sign-in from %s refused: too many wrong passwords", client)
            return self._render(
                request,
                "login.html",
                status_code=429,
                error=f"Too many wrong passwords: wait {wait} s and try again.",
            )
        if not hmac.compare_digest(_digest(form.get("password", "")), self._password_digest):
            self._failures.setdefault(client, []).append(time.monotonic())
            log.warning("console: wrong password from %s", client)
            await self.store.audit(
                actor=f"console:{client}",
                action="console.signin",
                surface=SURFACE,
                allowed=False,
                details={"reason": "wrong password"},
            )
            return self._render(request, "login.html", status_code=401, error="Wrong password.")
        request.session.clear()
        request.session["admin"] = True
        request.session["csrf"] = secrets.token_urlsafe(32)
        await self.store.audit(actor=ACTOR, action="console.signin", surface=SURFACE)
        return RedirectResponse("/admin/", status_code=303)  # the landing page

    def _throttled(self, client: str) -> int:
        """Seconds `client` must wait after MAX_FAILURES wrong passwords in FAILURE_WINDOW."""
        now = time.monotonic()
        recent = [t for t in self._failures.get(client, []) if now - t < FAILURE_WINDOW]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        if len(recent) < MAX_FAILURES:
            return 0
        return int(FAILURE_WINDOW - (now - recent[0])) + 1

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/admin/login", status_code=303)

    # -- channels --------------------------------------------------------------------------

    async def channels(self, request: Request) -> Response:
        page = await self.store.channels_page(_page(request))
        return self._render(request, "channels.html", page=page)

    async def channel(self, request: Request) -> Response:
        channel_id = int(request.path_params["id"])
        row = await self.store.channel(channel_id)
        if row is None:
            return self._render(request, "message.html", status_code=404, text="No such channel.")
        chat = ChatRef(row.platform, row.platform_chat_id, _kind(row.kind), row.title)
        overview = await self.admin.overview(channel_id, chat)
        config = await self.store.channel_config(channel_id)
        groups = [name for name in self.admin.toggle_names() if name.startswith("mcp:")]
        return self._render(
            request,
            "channel.html",
            channel=row,
            overview=overview,
            groups=[(name, config.tools.get(name)) for name in groups],
            config=config,
            limit_keys=LIMIT_KEYS,
            notice=request.query_params.get("saved", ""),
        )

    async def toggle_tool(self, request: Request) -> Response:
        channel_id = int(request.path_params["id"])
        form: dict[str, str] = request.state.form
        row = await self.store.channel(channel_id)
        if row is None:
            return self._render(request, "message.html", status_code=404, text="No such channel.")
        try:
            await self.admin.set_tool(
                actor=ACTOR,
                channel_id=channel_id,
                place=f"{row.platform}:{row.platform_chat_id}",
                tool=form.get("tool", ""),
                enabled=form.get("enabled") == "1",
                surface=SURFACE,
                is_admin=True,
            )
        except UnknownTool as exc:
            return self._render(request, "message.html", status_code=400, text=str(exc))
        return RedirectResponse(f"/admin/channels/{channel_id}?saved=tools", status_code=303)

    async def channel_settings(self, request: Request) -> Response:
        channel_id = int(request.path_params["id"])
        form: dict[str, str] = request.state.form
        row = await self.store.channel(channel_id)
        if row is None:
            return self._render(request, "message.html", status_code=404, text="No such channel.")
        limits: dict[str, int] = {}
        for key in LIMIT_KEYS:
            value = form.get(key, "").strip()
            if not value:
                continue
            if not value.isdigit():
                return self._render(
                    request,
                    "message.html",
                    status_code=400,
                    text=f"{key} must be a whole number of 0 or more (empty: the global value).",
                )
            limits[key] = int(value)
        prompt = form.get("system_prompt", "").strip() or None
        model = form.get("model", "").strip()[:128] or None
        await self.store.set_channel_settings(
            channel_id, system_prompt=prompt, model=model, limits=limits
        )
        await self.store.audit(
            actor=ACTOR,
            action="channel.settings",
            place=f"{row.platform}:{row.platform_chat_id}",
            surface=SURFACE,
            details={
                "channel_id": channel_id,
                "system_prompt": prompt,
                "model": model,
                "limits": limits,
            },
        )
        return RedirectResponse(f"/admin/channels/{channel_id}?saved=settings", status_code=303)

    # -- users -----------------------------------------------------------------------------

    async def users(self, request: Request) -> Response:
        page = await self.store.users_page(_page(request))
        month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        usage = await self.store.user_usage([row.id for row in page.rows], month_start)
        return self._render(request, "users.html", page=page, usage=usage)

    async def user_timezone(self, request: Request) -> Response:
        user_id = int(request.path_params["id"])
        timezone = request.state.form.get("timezone", "").strip()
        if timezone:
            try:
                zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                return self._render(
                    request,
                    "message.html",
                    status_code=400,
                    text=f"Unknown timezone {timezone!r}: use an IANA name like Europe/Berlin.",
                )
        user = await self.store.user(user_id)
        if user is None:
            return self._render(request, "message.html", status_code=404, text="No such user.")
        await self.store.set_user_timezone(user_id, timezone or None)
        await self.store.audit(
            actor=ACTOR,
            action="user.timezone",
            place=f"{user.platform}:{user.platform_user_id}",
            surface=SURFACE,
            details={"user_id": user_id, "timezone": timezone or None},
        )
        return RedirectResponse(f"/admin/users?page={_page(request)}", status_code=303)

    # -- conversations ---------------------------------------------------------------------

    async def conversations(self, request: Request) -> Response:
        channel = request.query_params.get("channel", "")
        page = await self.store.conversations_page(
            _page(request), int(channel) if channel.isdigit() else None
        )
        return self._render(request, "conversations.html", page=page, channel=channel)

    async def conversation(self, request: Request) -> Response:
        conversation_id = int(request.path_params["id"])
        page = await self.store.messages_page(conversation_id, _page(request))
        return self._render(
            request,
            "conversation.html",
            page=page,
            conversation_id=conversation_id,
            show_content=self.settings.console_show_content,
        )

    # -- reminders -------------------------------------------------------------------------

    async def reminders_page(self, request: Request) -> Response:
        status = request.query_params.get("status", "pending")
        page = await self.store.reminders_page(_page(request), status=status)
        return self._render(
            request,
            "reminders.html",
            page=page,
            status=status,
            can_cancel=self.reminders is not None,
            notice=request.query_params.get("done", ""),
        )

    async def cancel_reminder(self, request: Request) -> Response:
        reminder_id = int(request.path_params["id"])
        if self.reminders is None:
            return self._render(
                request, "message.html", status_code=400, text="Reminders are not running."
            )
        cancelled = await self.reminders.cancel(None, reminder_id)
        await self.store.audit(
            actor=ACTOR,
            action="reminder.cancel",
            surface=SURFACE,
            allowed=cancelled,
            details={"reminder_id": reminder_id}
            if cancelled
            else {"reminder_id": reminder_id, "reason": "not pending"},
        )
        done = "cancelled" if cancelled else "not-pending"
        return RedirectResponse(f"/admin/reminders?done={done}", status_code=303)

    # -- audit and usage -------------------------------------------------------------------

    async def audit(self, request: Request) -> Response:
        page = await self.store.audit_page(_page(request))
        return self._render(request, "audit.html", page=page)

    async def usage(self, request: Request) -> Response:
        days = 30
        now = time.monotonic()
        fresh = request.query_params.get("fresh") == "1"
        if fresh or self._chart is None or now - self._chart[0] >= CHART_CACHE_SECONDS:
            # Aggregates every usage row of the month: remembered for a minute.
            self._chart = (now, await self.store.tokens_per_day(days=days))
        rows = self._chart[1]
        chart = usage_chart(rows, days=days)
        age = int(now - self._chart[0])
        return self._render(request, "usage.html", chart=chart, rows=rows, age=age)


def usage_chart(rows: list[tuple[str, str, int]], *, days: int) -> dict[str, Any]:
    """Stacked bars: tokens per day, one colour per channel (the store already grouped all
    but the top channels as "other")."""
    totals: dict[str, int] = {}
    for _, label, tokens in rows:
        if label != "other":
            totals[label] = totals.get(label, 0) + tokens
    top = [label for label, _ in sorted(totals.items(), key=lambda kv: -kv[1])]
    today = datetime.now(UTC).date()
    day_list = [(today - timedelta(days=days - 1 - i)).isoformat() for i in range(days)]
    stacks: dict[str, dict[str, int]] = {day: {} for day in day_list}
    for day, label, tokens in rows:
        key = label if label in top else "other"
        if day in stacks:
            stacks[day][key] = stacks[day].get(key, 0) + tokens
    peak = max((sum(s.values()) for s in stacks.values()), default=0) or 1
    width, height, bar = 720, 240, 720 // days
    colours = {label: CHART_COLOURS[i % len(CHART_COLOURS)] for i, label in enumerate(top)}
    colours["other"] = "#bab0ac"
    rects = []
    for i, day in enumerate(day_list):
        y = height
        for label, tokens in stacks[day].items():
            h = max(1, round(tokens / peak * (height - 20))) if tokens else 0
            y -= h
            rects.append(
                {
                    "x": i * bar + 2,
                    "y": y,
                    "w": bar - 4,
                    "h": h,
                    "colour": colours[label],
                    "title": f"{day} {label}: {tokens:,} tokens",
                }
            )
    legend = [(label, colours[label]) for label in [*top, "other"] if label in colours]
    return {
        "width": width,
        "height": height,
        "rects": rects,
        "legend": legend,
        "peak": peak,
        "first": day_list[0],
        "last": day_list[-1],
        "empty": not rows,
    }


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded body as a dict (first value of each field)."""
    body = (await request.body())[:200_000]
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {key: values[0] for key, values in parsed.items() if values}


def _page(request: Request) -> int:
    value = request.query_params.get("page", "1")
    return max(1, min(int(value), 100_000)) if value.isdigit() else 1


def _kind(value: str) -> ChatKind:
    try:
        return ChatKind(value)
    except ValueError:
        return ChatKind.CHANNEL
