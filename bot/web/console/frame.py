"""The frame every console page stands in: its collaborators, the sign-in and CSRF guards, and
the templates, rendered in the reader's language."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bot.approvals.gate import Approvals
from bot.chat.languages import Languages
from bot.config import AdminSettings
from bot.domain import UserRef
from bot.i18n import (
    DEFAULT_LOCALE,
    N_,
    _,
    available_locales,
    current_locale,
    language_name,
    ngettext,
    short_tag,
)
from bot.policy.admin import Administration
from bot.storage.admin import AdminStore
from bot.storage.erase import TraceEraser
from bot.storage.feedback import FeedbackStore
from bot.storage.memory import MemoryStore
from bot.storage.prompts import PromptStore
from bot.storage.sessions import ConsoleSessionStore
from bot.storage.turns import TurnStore
from bot.web.clients import ClientResolver
from bot.web.forms import MAX_ID, NOT_A_FORM, BadQuery, read_form
from bot.web.overview import Overview
from bot.web.sessions import ConsoleSessions
from bot.web.signin import SignInThrottle

log = logging.getLogger("bot.web.console")

TEMPLATES = Path(__file__).parent.parent / "templates"
ACTOR = "console:admin"
SURFACE = "console"
NO_CHANNEL = N_("No such channel.")
NO_USER = N_("No such user.")
NO_FACT = N_("No such fact.")
NOT_FOUND = N_("Not found.")


class Reminders(Protocol):
    async def cancel(self, user: UserRef | None, reminder_id: int) -> bool: ...


Handler = Callable[[Request], Awaitable[Response]]


def password_digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class ConsoleFrame:
    """What every page of the console reads: the stores, the sessions, the templates."""

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
        self._password_digest = password_digest(password)
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

    async def _audit(self, action: str, place: str, details: dict[str, Any]) -> None:
        """An admin's change made in the console, in the audit log."""
        await self.store.audit(
            actor=ACTOR, action=action, place=place, surface=SURFACE, details=details
        )

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
