"""`AdminStore`: the SQL behind tool policy, channel settings, usage charts, audit and console.

Every list the console shows is paginated by keyset or a bounded OFFSET over an index,
so pages stay fast with many channels and messages (tests/bench/console.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Date, case, cast, func, literal, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.database import Database
from bot.storage.models import (
    AuditEntry,
    Channel,
    ChannelMedia,
    ChannelTool,
    Conversation,
    Message,
    Reminder,
    UsageRecord,
    User,
    utcnow,
)

PAGE_SIZE = 50
USERS = User.__table__  # type: ignore[attr-defined]
CHANNELS = Channel.__table__  # type: ignore[attr-defined]
LIMIT_KEYS = (
    "user_daily_tokens",
    "user_monthly_tokens",
    "channel_daily_tokens",
    "channel_monthly_tokens",
    "user_messages_per_minute",
)


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """What admins set for one channel: tool choices, prompt, model, limits and whether
    its model is shown pictures (None: the global setting)."""

    tools: dict[str, bool] = field(default_factory=dict)
    system_prompt: str | None = None
    model: str | None = None
    limits: dict[str, int] = field(default_factory=dict)
    vision: bool | None = None


@dataclass(frozen=True, slots=True)
class ChannelRow:
    id: int
    platform: str
    platform_chat_id: str
    kind: str
    title: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Any]
    page: int
    has_next: bool


class AdminStore:
    """`channel_config` is read on every turn, so it is cached for `cache_seconds`; this
    process's own changes clear it at once, another replica's show within that time."""

    def __init__(self, database: Database, *, cache_seconds: float = 5.0) -> None:
        self.db = database
        self.cache_seconds = cache_seconds
        self._configs: dict[int, tuple[float, ChannelConfig]] = {}

    # -- policy and channel settings ------------------------------------------------------

    async def channel_config(self, channel_id: int) -> ChannelConfig:
        cached = self._configs.get(channel_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        config = await self._load_config(channel_id)
        if len(self._configs) > 10_000:
            self._configs.clear()
        self._configs[channel_id] = (now, config)
        return config

    async def _load_config(self, channel_id: int) -> ChannelConfig:
        tools = ChannelTool.__table__.c  # type: ignore[attr-defined]
        channels = Channel.__table__.c  # type: ignore[attr-defined]

        media = ChannelMedia.__table__.c  # type: ignore[attr-defined]

        def work(connection: Connection) -> tuple[Sequence[Any], Any]:
            rows = connection.execute(
                sa_select(tools.tool, tools.enabled).where(tools.channel_id == channel_id)
            ).all()
            channel = connection.execute(
                sa_select(channels.system_prompt, channels.model, channels.limits, media.vision)
                .select_from(
                    Channel.__table__.outerjoin(  # type: ignore[attr-defined]
                        ChannelMedia.__table__,  # type: ignore[attr-defined]
                        media.channel_id == channels.id,
                    )
                )
                .where(channels.id == channel_id)
            ).first()
            return rows, channel

        rows, channel = await self.db.run(work, write=False)
        if channel is None:
            return ChannelConfig(tools={row.tool: bool(row.enabled) for row in rows})
        return ChannelConfig(
            tools={row.tool: bool(row.enabled) for row in rows},
            system_prompt=channel.system_prompt or None,
            model=channel.model or None,
            limits={k: int(v) for k, v in (channel.limits or {}).items() if k in LIMIT_KEYS},
            vision=channel.vision,
        )

    async def set_tool(self, channel_id: int, tool: str, enabled: bool, changed_by: str) -> None:
        values = {
            "channel_id": channel_id,
            "tool": tool,
            "enabled": enabled,
            "changed_by": changed_by,
            "changed_at": utcnow(),
        }
        async with self.db.write() as session:
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(ChannelTool.__table__).values(**values)  # type: ignore[attr-defined]
            statement = statement.on_conflict_do_update(
                index_elements=["channel_id", "tool"],
                set_={k: statement.excluded[k] for k in ("enabled", "changed_by", "changed_at")},
            )
            await _run(session, statement)
        self._configs.pop(channel_id, None)

    async def set_channel_settings(
        self,
        channel_id: int,
        *,
        system_prompt: str | None,
        model: str | None,
        limits: dict[str, int],
    ) -> None:
        async with self.db.write() as session:
            await _run(
                session,
                update(Channel)
                .where(Channel.id == channel_id)  # type: ignore[arg-type]
                .values(
                    system_prompt=system_prompt or None,
                    model=model or None,
                    limits={k: v for k, v in limits.items() if k in LIMIT_KEYS} or None,
                ),
            )
        self._configs.pop(channel_id, None)

    async def set_channel_model(self, channel_id: int, model: str | None) -> None:
        """The channel's own model (`@<provider>` names a provider; None: the default),
        leaving its prompt and limits as they are."""
        async with self.db.write() as session:
            await _run(
                session,
                update(Channel)
                .where(Channel.id == channel_id)  # type: ignore[arg-type]
                .values(model=model or None),
            )
        self._configs.pop(channel_id, None)

    async def set_channel_vision(self, channel_id: int, vision: bool | None) -> None:
        """Whether this channel's model is shown pictures (None: PARLEY_LLM_VISION)."""
        values = {"channel_id": channel_id, "vision": vision, "changed_at": utcnow()}
        async with self.db.write() as session:
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = insert(ChannelMedia.__table__).values(**values)  # type: ignore[attr-defined]
            statement = statement.on_conflict_do_update(
                index_elements=["channel_id"],
                set_={k: statement.excluded[k] for k in ("vision", "changed_at")},
            )
            await _run(session, statement)
        self._configs.pop(channel_id, None)

    async def channel(self, channel_id: int) -> ChannelRow | None:
        c = Channel.__table__.c  # type: ignore[attr-defined]
        query = sa_select(c.id, c.platform, c.platform_chat_id, c.kind, c.title, c.created_at)
        async with self.db.read() as session:
            row = (await _run(session, query.where(c.id == channel_id))).first()
        return ChannelRow(*row) if row is not None else None

    # -- usage ------------------------------------------------------------------------------

    async def tokens_per_day(self, *, days: int = 30, top: int = 6) -> list[tuple[str, str, int]]:
        """(day, channel label, tokens) over the last `days` days for the usage chart: the
        `top` channels by tokens each get their own label, all others are summed as "other"
        in SQL (so 10,000 channels still make at most days * (top + 1) rows)."""
        u = UsageRecord.__table__.c  # type: ignore[attr-defined]
        c = Channel.__table__.c  # type: ignore[attr-defined]
        since = utcnow() - timedelta(days=days)
        tokens = func.sum(u.prompt_tokens + u.completion_tokens)
        async with self.db.read() as session:
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            # `+ 0`: SQLite would otherwise walk the channel index and look up every row;
            # this way it reads the covering (created_at, channel, tokens) index.
            channel = (u.channel_id + 0).label("channel")
            leaders = (
                await _run(
                    session,
                    sa_select(channel)
                    .where(u.created_at >= since)
                    .group_by(channel)
                    .order_by(tokens.desc())
                    .limit(top),
                )
            ).all()
            leader_ids = [int(row[0]) for row in leaders]
            # SQLite keeps timestamps as ISO text: the first 10 characters are the UTC day.
            day = (
                cast(u.created_at, Date)
                if dialect == "postgresql"
                else func.substr(u.created_at, 1, 10)
            ).label("day")
            who = (
                case((u.channel_id.in_(leader_ids), u.channel_id), else_=0)
                if leader_ids
                else literal(0)
            ).label("who")
            rows = (
                await _run(
                    session,
                    sa_select(day, who, tokens.label("tokens"))
                    .where(u.created_at >= since)
                    .group_by(day, who)
                    .order_by(day),
                )
            ).all()
            names = {}
            if leader_ids:
                found = await _run(
                    session,
                    sa_select(c.id, c.platform, c.platform_chat_id, c.title).where(
                        c.id.in_(leader_ids)
                    ),
                )
                names = {
                    int(r.id): f"{r.platform}:{r.title or r.platform_chat_id}" for r in found.all()
                }
        return [(str(row.day), names.get(int(row.who), "other"), int(row.tokens)) for row in rows]

    async def user_usage(self, user_ids: Sequence[int], since: datetime) -> dict[int, int]:
        if not user_ids:
            return {}
        u = UsageRecord.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(u.user_id, func.sum(u.prompt_tokens + u.completion_tokens))
            .where(u.user_id.in_(list(user_ids)), u.created_at >= since)
            .group_by(u.user_id)
        )
        async with self.db.read() as session:
            return {int(k): int(v) for k, v in (await _run(session, query)).all()}

    # -- audit ------------------------------------------------------------------------------

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        place: str = "",
        surface: str = "",
        allowed: bool = True,
        details: dict[str, Any] | None = None,
    ) -> None:
        async with self.db.write() as session:
            session.add(
                AuditEntry(
                    actor=actor,
                    action=action,
                    place=place,
                    surface=surface,
                    allowed=allowed,
                    details=details or {},
                    created_at=utcnow(),
                )
            )

    async def audit_page(self, page: int = 1) -> Page:
        a = AuditEntry.__table__.c  # type: ignore[attr-defined]
        query = sa_select(a).order_by(a.id.desc())
        return await self._page(query, page)

    # -- console lists ----------------------------------------------------------------------

    async def channels_page(self, page: int = 1) -> Page:
        c = Channel.__table__.c  # type: ignore[attr-defined]
        query = sa_select(
            c.id, c.platform, c.platform_chat_id, c.kind, c.title, c.created_at
        ).order_by(c.id.desc())
        return await self._page(query, page)

    async def users_page(self, page: int = 1) -> Page:
        u = User.__table__.c  # type: ignore[attr-defined]
        query = sa_select(
            u.id, u.platform, u.platform_user_id, u.display_name, u.timezone, u.created_at
        ).order_by(u.id.desc())
        return await self._page(query, page)

    async def set_user_timezone(self, user_id: int, timezone: str | None) -> None:
        async with self.db.write() as session:
            await _run(
                session,
                update(User).where(User.id == user_id).values(timezone=timezone or None),  # type: ignore[arg-type]
            )

    async def user(self, user_id: int) -> Any:
        u = User.__table__.c  # type: ignore[attr-defined]
        async with self.db.read() as session:
            return (await _run(session, sa_select(u).where(u.id == user_id))).first()

    async def conversations_page(self, page: int = 1, channel_id: int | None = None) -> Page:
        v = Conversation.__table__.c  # type: ignore[attr-defined]
        u = User.__table__.c  # type: ignore[attr-defined]
        c = Channel.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(
                v.id,
                v.thread_key,
                v.created_at,
                v.closed_at,
                u.platform_user_id,
                u.display_name,
                c.platform,
                c.platform_chat_id,
                c.title,
            )
            .join(USERS, u.id == v.user_id)
            .join(CHANNELS, c.id == v.channel_id)
            .order_by(v.id.desc())
        )
        if channel_id is not None:
            query = query.where(v.channel_id == channel_id)
        return await self._page(query, page)

    async def messages_page(self, conversation_id: int, page: int = 1) -> Page:
        m = Message.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(m.id, m.role, m.content, m.tool_calls, m.name, m.is_error, m.created_at)
            .where(m.conversation_id == conversation_id)
            .order_by(m.id)
        )
        return await self._page(query, page)

    async def reminders_page(self, page: int = 1, *, status: str = "pending") -> Page:
        r = Reminder.__table__.c  # type: ignore[attr-defined]
        u = User.__table__.c  # type: ignore[attr-defined]
        c = Channel.__table__.c  # type: ignore[attr-defined]
        query = (
            sa_select(
                r.id,
                r.kind,
                r.text,
                r.due_at,
                r.timezone,
                r.recurrence,
                r.cron,
                r.status,
                r.attempts,
                r.last_error,
                u.platform,
                u.platform_user_id,
                u.display_name,
                c.platform_chat_id,
                c.title,
            )
            .join(USERS, u.id == r.user_id)
            .join(CHANNELS, c.id == r.channel_id)
            .where(r.status == status)
            .order_by(r.due_at, r.id)
        )
        return await self._page(query, page)

    async def _page(self, query: Any, page: int) -> Page:
        page = max(1, page)
        query = query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)
        async with self.db.read() as session:
            rows = list((await _run(session, query)).all())
        return Page(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE)


async def _run(session: AsyncSession, statement: Any) -> Any:
    """Run a Core statement (sqlmodel's `exec` types only its own selects)."""
    return await session.exec(statement)
