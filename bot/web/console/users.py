"""A user's pages: timezone, language, what they asked to be remembered, erasing them."""

from __future__ import annotations

import logging
import zoneinfo
from dataclasses import asdict
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.domain import UserRef
from bot.i18n import _
from bot.web.console.frame import NO_FACT, NO_USER, ConsoleFrame
from bot.web.forms import page_number
from bot.web.languages import known

log = logging.getLogger("bot.web.console")


class UserPages(ConsoleFrame):
    """One user's page and its forms; every change audited."""

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
        await self._audit(
            "user.timezone",
            f"{user.platform}:{user.platform_user_id}",
            {"user_id": user_id, "timezone": timezone or None},
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
        await self._audit(
            "user.language",
            f"{user.platform}:{user.platform_user_id}",
            {"user_id": user_id, "language": locale},
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
        await self._audit(
            "memory.forget",
            f"{user.platform}:{user.platform_user_id}",
            {"user_id": user_id, "fact_id": fact_id},
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
        # The durable turns' rows hold the questions too (bot/turn/durable.py).
        turn_inputs = (
            await self.turns.erase_inputs(user.platform, user.platform_user_id)
            if self.turns is not None
            else 0
        )
        qualified = f"{user.platform}:{user.platform_user_id}"
        traces = await self.traces.erase(user_id, qualified) if self.traces is not None else None
        await self._audit(
            "user.erase",
            f"{user.platform}:{user.platform_user_id}",
            {
                "user_id": user_id,
                "facts": erased.facts,
                "summaries": erased.summaries,
                "messages": erased.messages,
                "turn_inputs": turn_inputs,
                **(asdict(traces) if traces is not None else {}),
            },
        )
        return RedirectResponse(f"/admin/users/{user_id}?done=erased", status_code=303)
