"""`LanguageStore`: each user's chosen language and the one their chat app last reported."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy import select as sa_select

from bot.domain import UserRef
from bot.storage.database import Database
from bot.storage.models import User, utcnow
from bot.storage.rows import insert_ignore

_USERS: Table = User.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class UserLanguage:
    """A user's own choice (a catalog locale, or None) and their app's last language tag."""

    chosen: str | None = None
    platform: str | None = None


_BY_REF = sa_select(_USERS.c.language, _USERS.c.platform_language).where(
    _USERS.c.platform == bindparam("platform"),
    _USERS.c.platform_user_id == bindparam("platform_user_id"),
)
_BY_ID = sa_select(_USERS.c.language, _USERS.c.platform_language).where(
    _USERS.c.id == bindparam("user")
)
# Parameter names differ from the column names: an UPDATE reserves those for its values.
_SET = update(_USERS).where(
    _USERS.c.platform == bindparam("b_platform"),
    _USERS.c.platform_user_id == bindparam("b_platform_user_id"),
)


class LanguageStore:
    """Reads and writes the two language columns of `users` (rows the conversation store
    creates; a user never seen has no row, and reads as `UserLanguage()`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def of(self, user: UserRef) -> UserLanguage:
        values = {"platform": user.platform, "platform_user_id": user.platform_user_id}
        row = await self.db.run(
            lambda connection: connection.execute(_BY_REF, values).first(), write=False
        )
        return UserLanguage() if row is None else UserLanguage(row[0], row[1])

    async def of_id(self, user_id: int) -> UserLanguage:
        row = await self.db.run(
            lambda connection: connection.execute(_BY_ID, {"user": user_id}).first(),
            write=False,
        )
        return UserLanguage() if row is None else UserLanguage(row[0], row[1])

    async def choose(self, user: UserRef, locale: str | None) -> None:
        await self._set(user, language=locale)

    async def note_platform_tag(self, user: UserRef, tag: str) -> None:
        await self._set(user, platform_language=tag[:35])

    async def _set(self, user: UserRef, **columns: str | None) -> None:
        # The user may not have a row yet (a command before any turn): create it.
        row = {
            "platform": user.platform,
            "platform_user_id": user.platform_user_id,
            "display_name": user.display_name,
            "created_at": utcnow(),
        }
        keys = {"b_platform": user.platform, "b_platform_user_id": user.platform_user_id}

        def work(connection: Connection) -> None:
            insert_ignore(connection, _USERS, row)
            connection.execute(_SET.values(**columns), keys)

        await self.db.run(work)
