"""Signing in and out, and the landing page."""

from __future__ import annotations

import hmac
import logging
import math

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.i18n import _
from bot.web.console.frame import ACTOR, SURFACE, ConsoleFrame, password_digest
from bot.web.forms import NOT_A_FORM, read_form
from bot.web.signin import SignInBusy

log = logging.getLogger("bot.web.console")


class AccessPages(ConsoleFrame):
    """The sign-in form, signing in and out, and where a signed-in admin lands."""

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
                if hmac.compare_digest(
                    password_digest(form.get("password", "")), self._password_digest
                ):
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
