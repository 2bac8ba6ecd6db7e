"""A channel's pages: its tools, settings, prompts, pictures, approval rules and grants."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bot.approvals.gate import Mode
from bot.domain import ChatKind, ChatRef
from bot.i18n import _
from bot.numbers import typed_number
from bot.policy.admin import UnknownTool
from bot.storage.channels import LIMIT_KEYS
from bot.storage.prompts import BadPrompts, parse_prompts
from bot.web.console.frame import ACTOR, NO_CHANNEL, SURFACE, ConsoleFrame
from bot.web.forms import page_number

log = logging.getLogger("bot.web.console")


class ChannelPages(ConsoleFrame):
    """One channel's page and its forms; every change audited."""

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
        relaxed: set[str] = set()
        if self.approvals is not None:
            rules = await self.approvals.rules(channel_id)
            relaxed = await self.approvals.relaxations.of(channel_id)
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
            relaxed=relaxed,
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

    async def outside_rule(self, request: Request) -> Response:
        """Whether a tool that acts asks after outside words in this channel even past
        "Always allow" (bot/approvals/trust.py): on by default; an admin may relax it."""
        channel_id = int(request.path_params["id"])
        form: dict[str, str] = request.state.form
        row = await self.store.channel(channel_id)
        if row is None or self.approvals is None:
            return self._render(request, "message.html", status_code=404, text=_(NO_CHANNEL))
        item = self.admin.tools.get(form.get("tool", ""))
        if item is None or form.get("relaxed") not in ("0", "1"):
            return self._render(
                request, "message.html", status_code=400, text=_("No such tool or rule.")
            )
        await self.approvals.relaxations.set(
            channel_id=channel_id,
            place=f"{row.platform}:{row.platform_chat_id}",
            tool=item.name,
            relaxed=form["relaxed"] == "1",
            actor=ACTOR,
            surface=SURFACE,
            is_admin=True,
        )
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
        await self._audit(
            "channel.settings",
            f"{row.platform}:{row.platform_chat_id}",
            {
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
        await self._audit(
            "channel.vision",
            f"{row.platform}:{row.platform_chat_id}",
            {"channel_id": channel_id, "vision": vision},
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
        await self._audit(
            "channel.prompts",
            f"{row.platform}:{row.platform_chat_id}",
            {"channel_id": channel_id, "prompts": prompts},
        )
        return RedirectResponse(f"/admin/channels/{channel_id}?saved=prompts", status_code=303)


def _kind(value: str) -> ChatKind:
    try:
        return ChatKind(value)
    except ValueError:
        return ChatKind.CHANNEL
