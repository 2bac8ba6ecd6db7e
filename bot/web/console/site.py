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

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from bot.i18n import normalize
from bot.web.console.access import AccessPages
from bot.web.console.channels import ChannelPages
from bot.web.console.records import RecordPages
from bot.web.console.users import UserPages
from bot.web.languages import ReaderLanguage


class Console(AccessPages, ChannelPages, UserPages, RecordPages):
    """Every page of the console, and the routes to them under /admin."""

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
                    "/channels/{id:int}/outside-rule",
                    signed_in(self._checked(self.outside_rule)),
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
