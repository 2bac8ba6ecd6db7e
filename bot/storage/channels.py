"""`ChannelStore`: the SQL behind tool policy and what admins set for a channel."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite

from bot.storage.database import Database
from bot.storage.models import Channel, ChannelMedia, ChannelTool, utcnow
from bot.storage.reports import run_statement as _run

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


class ChannelStore:
    """`channel_config` is read on every turn, so it is cached for `cache_seconds`; this
    process's own changes clear it at once, another replica's show within that time."""

    def __init__(self, database: Database, *, cache_seconds: float = 5.0) -> None:
        self.db = database
        self.cache_seconds = cache_seconds
        self._configs: dict[int, tuple[float, ChannelConfig]] = {}

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
