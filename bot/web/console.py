"""The admin web console under /admin: server-rendered pages, no JavaScript needed.

Sign-in takes PARLEY_ADMIN_PASSWORD: both sides are hashed (SHA-256) and compared in
constant time; wrong passwords are slowed per address and globally, never locked out
(bot/web/signin.py). Sessions live in the database and end at sign-out, when idle too
long, or at their absolute lifetime (bot/web/sessions.py). Every POST carries the
session's CSRF token; a missing or wrong one is refused with 403, a body that is not a
form with 400. Every change goes through `Administration` or `AdminStore` and into the
audit log with the surface "console".
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from bot.admin import Administration, UnknownTool
from bot.approvals import Approvals, Mode
from bot.config import AdminSettings
from bot.domain import ChatKind, ChatRef, UserRef
from bot.i18n import (
    DEFAULT_LOCALE,
    N_,
    _,
    available_locales,
    current_locale,
    language_name,
    ngettext,
    normalize,
    short_tag,
)
from bot.languages import Languages
from bot.numbers import typed_number
from bot.storage.admin import LIMIT_KEYS, AdminStore
from bot.storage.erase import TraceEraser
from bot.storage.feedback import FeedbackStore
from bot.storage.memory import MemoryStore
from bot.storage.prompts import BadPrompts, PromptStore, parse_prompts
from bot.storage.sessions import ConsoleSessionStore
from bot.storage.turns import TurnStore
from bot.web.clients import ClientResolver
from bot.web.forms import MAX_ID, NOT_A_FORM, BadQuery, page_number, query_int, read_form
from bot.web.languages import ReaderLanguage, known
from bot.web.overview import Overview
from bot.web.sessions import ConsoleSessions
from bot.web.signin import SignInBusy, SignInThrottle

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
ACTOR = "console:admin"
SURFACE = "console"
CHART_CACHE_SECONDS = 60.0
NO_CHANNEL = N_("No such channel.")
NO_USER = N_("No such user.")
NO_FACT = N_("No such fact.")
NOT_FOUND = N_("Not found.")
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
        sessions: ConsoleSessionStore,
        clients: ClientResolver | None = None,
        public_url: str = "",
        reminders: Reminders | None = None,
        overview: Overview | None = None,
        memory: MemoryStore | None = None,
        approvals: Approvals | None = None,
        turns: TurnStore | None = None,
        languages: Languages | None = None,
        default_language: str = DEFAULT_LOCALE,
        feedback: FeedbackStore | None = None,
        prompts: PromptStore | None = None,
        traces: TraceEraser | None = None,
    ) -> None:
        if settings.console_password is None or not settings.console_password.get_secret_value():
            raise ValueError("the console needs PARLEY_ADMIN_PASSWORD")
        password = settings.console_password.get_secret_value()
        self.settings = settings
        self.store = store
        self.admin = admin
        self.reminders = reminders
        self.overview = overview
        self.memory = memory
        self.approvals = approvals
        self.turns = turns
        self.languages = languages
        self.default_language = default_language
        self.feedback = feedback
        self.prompts = prompts
        self.traces = traces
        self._password_digest = _digest(password)
        self.clients = clients or ClientResolver()
        self.sessions = ConsoleSessions(settings, sessions, self.clients, public_url=public_url)
        self.throttle = SignInThrottle(
            base_delay=settings.console_signin_delay_seconds,
            max_delay=settings.console_signin_max_delay_seconds,
            tracked=settings.console_signin_tracked,
        )
        self._chart: tuple[float, list[tuple[str, str, int]]] | None = None
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True),
            auto_reload=False,
        )
        # Every word of the templates goes through the catalogs: {{ _("Users") }}.
        self.env.globals["_"] = _
        self.env.globals["ngettext"] = ngettext

    # -- routing ---------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        signed_in = self._signed_in
        app = Starlette(
            routes=[
                Route("/", signed_in(self.home)),
                Route("/login", self.login_page, methods=["GET"]),
                Route("/login", self.login, methods=["POST"]),
                Route("/logout", signed_in(self._checked(self.logout)), methods=["POST"]),
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
                Route(
                    "/channels/{id:int}/prompts",
                    signed_in(self._checked(self.channel_prompts)),
                    methods=["POST"],
                ),
                Route(
                    "/channels/{id:int}/vision",
                    signed_in(self._checked(self.channel_vision)),
                    methods=["POST"],
                ),
                Route(
                    "/channels/{id:int}/approval-rule",
                    signed_in(self._checked(self.approval_rule)),
                    methods=["POST"],
                ),
                Route(
                    "/channels/{id:int}/grants/{grant:int}/revoke",
                    signed_in(self._checked(self.revoke_grant)),
                    methods=["POST"],
                ),
                Route("/users", signed_in(self.users)),
                Route(
                    "/users/{id:int}/timezone",
                    signed_in(self._checked(self.user_timezone)),
                    methods=["POST"],
                ),
                Route("/users/{id:int}", signed_in(self.user_page)),
                Route(
                    "/users/{id:int}/language",
                    signed_in(self._checked(self.user_language)),
                    methods=["POST"],
                ),
                Route(
                    "/users/{id:int}/facts/{fact:int}/delete",
                    signed_in(self._checked(self.delete_fact)),
                    methods=["POST"],
                ),
                Route(
                    "/users/{id:int}/erase",
                    signed_in(self._checked(self.erase_user)),
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
        )
        return [
            Mount(
                "/admin",
                app=ReaderLanguage(app, normalize(self.default_language)),
            )
        ]

    def _signed_in(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            session = await self.sessions.current(request)
            if session is None:
                return RedirectResponse("/admin/login", status_code=303)
            request.state.session = session
            if any(isinstance(v, int) and v > MAX_ID for v in request.path_params.values()):
                return self._render(request, "message.html", status_code=404, text=_(NOT_FOUND))
            try:
                return await handler(request)
            except BadQuery as exc:
                log.warning("console: refused %s with 400: %s", request.url.path, exc)
                return self._render(request, "message.html", status_code=400, text=str(exc))

        return guarded

    def _checked(self, handler: Handler) -> Handler:
        """Refuse a POST whose CSRF token is missing or not this session's."""

        async def guarded(request: Request) -> Response:
            form = await read_form(request)
            if form is None:
                return self._render(request, "message.html", status_code=400, text=_(NOT_A_FORM))
            expected = request.state.session.csrf
            given = form.get("csrf", "")
            if not expected or not secrets.compare_digest(expected, given):
                log.warning(
                    "console: refused a POST to %s without a valid CSRF token", request.url.path
                )
                return HTMLResponse(
                    _(
                        "Refused: this form has expired or did not come from the console. "
                        "Go back, reload the page and try again."
                    ),
                    status_code=403,
                )
            request.state.form = form
            return await handler(request)

        return guarded

    def _render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        session = getattr(request.state, "session", None)
        new_login_token = False
        if session is not None:
            csrf = session.csrf
        else:
            csrf, new_login_token = self.sessions.login_token(request)
        html = self.env.get_template(name).render(
            csrf=csrf,
            signed_in=session is not None,
            path=request.url.path,
            locale=current_locale(),
            html_lang=current_locale().replace("_", "-"),
            languages=[(short_tag(tag), language_name(tag)) for tag in available_locales()],
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        if new_login_token:
            self.sessions.set_login_token(request, response, csrf)
        return response

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
        form = await read_form(request)
        if form is None:
            return self._render(request, "login.html", status_code=400, error=_(NOT_A_FORM))
        if not self.sessions.login_token_ok(request, form.get("csrf", "")):
            return self._render(
                request, "login.html", status_code=403, error=_("The form expired: try again.")
            )
        client = self.clients.address(request.scope)
        try:
            async with self.throttle.attempt(client):
                if hmac.compare_digest(_digest(form.get("password", "")), self._password_digest):
                    self.throttle.succeeded(client)
                    signed_in = RedirectResponse("/admin/", status_code=303)  # the landing page
                    await self.sessions.start(request, signed_in, client)
                    await self.store.audit(actor=ACTOR, action="console.signin", surface=SURFACE)
                    return signed_in
                wait = self.throttle.failed(client)
                log.warning("console: wrong password from %s", client)
                await self.store.audit(
                    actor=f"console:{client}",
                    action="console.signin",
                    surface=SURFACE,
                    allowed=False,
                    details={"reason": "wrong password"},
                )
        except SignInBusy:
            log.warning("console: sign-in from %s refused: another one is waiting", client)
            busy = self._render(
                request,
                "login.html",
                status_code=429,
                error=_("Another sign-in from your address is waiting: try again in a moment."),
            )
            busy.headers["Retry-After"] = str(math.ceil(self.throttle.delay(client)))
            return busy
        error = _("Wrong password.")
        if wait > 0:
            error = _(
                "Wrong password. After several wrong passwords, the next try waits {seconds} s.",
                seconds=math.ceil(wait),
            )
        response = self._render(request, "login.html", status_code=401, error=error)
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/admin/login", status_code=303)
        await self.sessions.end(request, response)
        await self.store.audit(actor=ACTOR, action="console.signout", surface=SURFACE)
        return response

    # -- channels --------------------------------------------------------------------------

    async def channels(self, request: Request) -> Response:
        page = await self.store.channels_page(page_number(request))
        return self._render(request, "channels.html", page=page)

    async def channel(self, request: Request) -> Response:
        channel_id = int(request.path_params["id"])
        row = await self.store.channel(channel_id)
        if row is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_CHANNEL))
        chat = ChatRef(row.platform, row.platform_chat_id, _kind(row.kind), row.title)
        overview = await self.admin.overview(channel_id, chat)
        config = await self.store.channel_config(channel_id)
        groups = [name for name in self.admin.toggle_names() if name.startswith("mcp:")]
        rules: dict[str, Mode] = {}
        grants = []
        if self.approvals is not None:
            rules = await self.approvals.rules(channel_id)
            grants = await self.approvals.grants(channel_id=channel_id)
        feedback = (
            await self.feedback.of_chat(row.platform, row.platform_chat_id)
            if self.feedback is not None
            else []
        )
        prompts = await self.prompts.of_channel(channel_id) if self.prompts is not None else []
        return self._render(
            request,
            "channel.html",
            channel=row,
            feedback=feedback,
            prompts="\n".join(f"{p['title']} | {p['message']}" for p in prompts),
            prompts_enabled=self.prompts is not None,
            overview=overview,
            groups=[(name, config.tools.get(name)) for name in groups],
            config=config,
            limit_keys=LIMIT_KEYS,
            providers=self.admin.providers,
            notice=request.query_params.get("saved", ""),
            approvals=self.approvals is not None,
            rules={tool: mode.value for tool, mode in rules.items()},
            modes=[mode.value for mode in Mode],
            mode_names={
                "": _("default"),
                Mode.ASK.value: _("always ask"),
                Mode.REMEMBER.value: _("ask once, then remember"),
                Mode.NEVER.value: _("never ask"),
            },
            grants=grants,
        )

    async def approval_rule(self, request: Request) -> Response:
        """An admin's rule for when a tool asks in this channel: ask / remember / never, or
        "" (the default). "never" for a tool that acts on the world needs the form's
        explicit box, as `/tools rule <tool> never!` does in chat."""
        channel_id = int(request.path_params["id"])
        form: dict[str, str] = request.state.form
        row = await self.store.channel(channel_id)
        if row is None or self.approvals is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_CHANNEL))
        item = self.admin.tools.get(form.get("tool", ""))
        choice = form.get("mode", "")
        if item is None or choice not in {"", *(mode.value for mode in Mode)}:
            return self._render(
                request, "message.html", status_code=400, text=_("No such tool or rule.")
            )
        refusal = await self.approvals.set_rule(
            channel_id=channel_id,
            place=f"{row.platform}:{row.platform_chat_id}",
            item=item,
            mode=Mode(choice) if choice else None,
            actor=ACTOR,
            surface=SURFACE,
            is_admin=True,
            explicit=form.get("explicit") == "1",
        )
        if refusal:
            return self._render(request, "message.html", status_code=400, text=refusal)
        return RedirectResponse(f"/admin/channels/{channel_id}?saved=approvals", status_code=303)

    async def revoke_grant(self, request: Request) -> Response:
        """Take back someone's "Always allow" in this channel: the tool asks them again."""
        channel_id, grant_id = int(request.path_params["id"]), int(request.path_params["grant"])
        if self.approvals is None:
            return self._render(request, "message.html", status_code=404, text=_("No such grant."))
        standing = {grant.id for grant in await self.approvals.grants(channel_id=channel_id)}
        if grant_id not in standing:
            return self._render(request, "message.html", status_code=404, text=_("No such grant."))
        await self.approvals.revoke(grant_id, actor=ACTOR, surface=SURFACE, own_only=False)
        return RedirectResponse(f"/admin/channels/{channel_id}?saved=approvals", status_code=303)

    async def toggle_tool(self, request: Request) -> Response:
        channel_id = int(request.path_params["id"])
        form: dict[str, str] = request.state.form
        row = await self.store.channel(channel_id)
        if row is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_CHANNEL))
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
            return self._render(request, "message.html", status_code=404, text=_(NO_CHANNEL))
        limits: dict[str, int] = {}
        for key in LIMIT_KEYS:
            value = form.get(key, "").strip()
            if not value:
                continue
            number = typed_number(value)
            if number is None:
                return self._render(
                    request,
                    "message.html",
                    status_code=400,
                    text=_(
                        "{setting} must be a whole number of 0 or more (empty: the global value).",
                        setting=key,
                    ),
                )
            limits[key] = number
        prompt = form.get("system_prompt", "").strip() or None
        model = form.get("model", "").strip()[:128] or None
        # `@name` must name a provider of the file: a typo would quietly send the channel
        # to the default provider (or, without a file, ask the model API for "@name").
        refusal = self.admin.model_refusal(model) if model else None
        if refusal:
            return self._render(request, "message.html", status_code=400, text=refusal)
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

    async def channel_vision(self, request: Request) -> Response:
        """Whether the channel's model is shown pictures: "on", "off" or "" (the global
        PARLEY_LLM_VISION)."""
        channel_id = int(request.path_params["id"])
        choice = request.state.form.get("vision", "")
        row = await self.store.channel(channel_id)
        if row is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_CHANNEL))
        if choice not in ("", "on", "off"):
            return self._render(
                request, "message.html", status_code=400, text=_("vision must be on, off or empty.")
            )
        vision = None if not choice else choice == "on"
        await self.store.set_channel_vision(channel_id, vision)
        await self.store.audit(
            actor=ACTOR,
            action="channel.vision",
            place=f"{row.platform}:{row.platform_chat_id}",
            surface=SURFACE,
            details={"channel_id": channel_id, "vision": vision},
        )
        return RedirectResponse(f"/admin/channels/{channel_id}?saved=vision", status_code=303)

    async def channel_prompts(self, request: Request) -> Response:
        """The channel's suggested prompts, one `title | message` per line (empty: the
        app's defaults)."""
        channel_id = int(request.path_params["id"])
        row = await self.store.channel(channel_id)
        if row is None or self.prompts is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_CHANNEL))
        try:
            prompts = parse_prompts(request.state.form.get("prompts", ""))
        except BadPrompts as exc:
            return self._render(request, "message.html", status_code=400, text=str(exc))
        await self.prompts.set(channel_id, prompts)
        await self.store.audit(
            actor=ACTOR,
            action="channel.prompts",
            place=f"{row.platform}:{row.platform_chat_id}",
            surface=SURFACE,
            details={"channel_id": channel_id, "prompts": prompts},
        )
        return RedirectResponse(f"/admin/channels/{channel_id}?saved=prompts", status_code=303)

    # -- users -----------------------------------------------------------------------------

    async def users(self, request: Request) -> Response:
        page = await self.store.users_page(page_number(request))
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
                    text=_(
                        "Unknown timezone {timezone}: use an IANA name like Europe/Berlin.",
                        timezone=repr(timezone),
                    ),
                )
        user = await self.store.user(user_id)
        if user is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_USER))
        await self.store.set_user_timezone(user_id, timezone or None)
        await self.store.audit(
            actor=ACTOR,
            action="user.timezone",
            place=f"{user.platform}:{user.platform_user_id}",
            surface=SURFACE,
            details={"user_id": user_id, "timezone": timezone or None},
        )
        return RedirectResponse(f"/admin/users?page={page_number(request)}", status_code=303)

    async def user_language(self, request: Request) -> Response:
        """The language Parley writes to this user in: a catalog's, or empty (their app's)."""
        user_id = int(request.path_params["id"])
        choice = request.state.form.get("language", "").strip()[:35]
        locale = known(choice) if choice else None
        if choice and locale is None:
            return self._render(
                request,
                "message.html",
                status_code=400,
                text=_("There is no catalog for the language {language}.", language=choice),
            )
        user = await self.store.user(user_id)
        if user is None or self.languages is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_USER))
        who = UserRef(user.platform, user.platform_user_id)
        await self.languages.set_choice(who, locale)
        await self.store.audit(
            actor=ACTOR,
            action="user.language",
            place=f"{user.platform}:{user.platform_user_id}",
            surface=SURFACE,
            details={"user_id": user_id, "language": locale},
        )
        return RedirectResponse(f"/admin/users/{user_id}?done=language", status_code=303)

    async def user_page(self, request: Request) -> Response:
        """One user: what they asked Parley to remember, and erasing what Parley keeps."""
        user_id = int(request.path_params["id"])
        user = await self.store.user(user_id)
        if user is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_USER))
        facts = await self.memory.facts_of_user(user_id) if self.memory is not None else []
        return self._render(
            request,
            "user.html",
            user=user,
            facts=facts,
            memory=self.memory is not None,
            done=request.query_params.get("done", ""),
        )

    async def delete_fact(self, request: Request) -> Response:
        user_id, fact_id = int(request.path_params["id"]), int(request.path_params["fact"])
        user = await self.store.user(user_id)
        if user is None or self.memory is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_USER))
        if not await self.memory.delete_fact(user_id, fact_id):
            return self._render(request, "message.html", status_code=404, text=_(NO_FACT))
        await self.store.audit(
            actor=ACTOR,
            action="memory.forget",
            place=f"{user.platform}:{user.platform_user_id}",
            surface=SURFACE,
            details={"user_id": user_id, "fact_id": fact_id},
        )
        return RedirectResponse(f"/admin/users/{user_id}?done=forgotten", status_code=303)

    async def erase_user(self, request: Request) -> Response:
        """Delete the user's memory, summaries and messages, and their words everywhere
        else (turns, approval cards, emails, reminders, feedback: bot/storage/erase.py);
        the form must repeat the user's platform id (a deliberate act, not a stray
        click)."""
        user_id = int(request.path_params["id"])
        user = await self.store.user(user_id)
        if user is None or self.memory is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_USER))
        if request.state.form.get("confirm", "").strip() != user.platform_user_id:
            return self._render(
                request,
                "message.html",
                status_code=400,
                text=_("Type the user's id to confirm: nothing was deleted."),
            )
        erased = await self.memory.erase_user(user_id)
        # The durable turns' rows hold the questions too (bot/turns.py).
        turn_inputs = (
            await self.turns.erase_inputs(user.platform, user.platform_user_id)
            if self.turns is not None
            else 0
        )
        qualified = f"{user.platform}:{user.platform_user_id}"
        traces = await self.traces.erase(user_id, qualified) if self.traces is not None else None
        await self.store.audit(
            actor=ACTOR,
            action="user.erase",
            place=f"{user.platform}:{user.platform_user_id}",
            surface=SURFACE,
            details={
                "user_id": user_id,
                "facts": erased.facts,
                "summaries": erased.summaries,
                "messages": erased.messages,
                "turn_inputs": turn_inputs,
                **(asdict(traces) if traces is not None else {}),
            },
        )
        return RedirectResponse(f"/admin/users/{user_id}?done=erased", status_code=303)

    # -- conversations ---------------------------------------------------------------------

    async def conversations(self, request: Request) -> Response:
        channel = query_int(request, "channel")
        page = await self.store.conversations_page(page_number(request), channel)
        return self._render(
            request, "conversations.html", page=page, channel="" if channel is None else channel
        )

    async def conversation(self, request: Request) -> Response:
        conversation_id = int(request.path_params["id"])
        page = await self.store.messages_page(conversation_id, page_number(request))
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
        page = await self.store.reminders_page(page_number(request), status=status)
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
                request, "message.html", status_code=400, text=_("Reminders are not running.")
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
        page = await self.store.audit_page(page_number(request))
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
    for _day, label, tokens in rows:
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


def _kind(value: str) -> ChatKind:
    try:
        return ChatKind(value)
    except ValueError:
        return ChatKind.CHANNEL
