"""Console sign-in over real HTTP: slowing without lockout, who the client is, sessions
that sign-out ends, idle and absolute lifetimes, and the cookie's flags."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import httpx
from sqlalchemy import update

from bot.app import Application
from bot.storage.models import ConsoleSession, utcnow
from bot.web.signin import FREE_FAILURES
from tests.databases import fresh_postgres_database
from tests.web.console_harness import PASSWORD, ConsoleFactory, csrf_of, sign_in
from tests.web.test_admin_console import audit_rows

# Tests wait what the slowing asks, so it asks little.
FAST = {"console_signin_delay_seconds": 0.01, "console_signin_max_delay_seconds": 0.05}


async def signed_in(client: httpx.AsyncClient) -> bool:
    response = await client.get("/admin/channels")
    assert response.status_code in (200, 303)
    return response.status_code == 200


async def age_sessions(app: Application, **values: object) -> None:
    async with app.database.write() as session:
        await session.exec(update(ConsoleSession).values(**values))  # type: ignore[call-overload]


async def test_wrong_passwords_are_slowed_and_the_right_one_still_signs_in(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=(), **FAST)
    async with console.client() as client:
        wrong = [await sign_in(client, f"guess {i}") for i in range(FREE_FAILURES + 3)]
        right = await sign_in(client)
        assert await signed_in(client)

    assert [r.status_code for r in wrong] == [401] * (FREE_FAILURES + 3)
    # No wait while the free failures last, then each answer names the next wait.
    assert [r.headers["retry-after"] for r in wrong[: FREE_FAILURES - 1]] == ["0", "0"]
    assert all(r.headers["retry-after"] == "1" for r in wrong[FREE_FAILURES - 1 :])
    assert "the next try waits" in wrong[-1].text
    assert right.status_code == 303 and right.headers["location"] == "/admin/"
    refusals = [e for e in await audit_rows(console.app) if not e.allowed]
    assert len(refusals) == FREE_FAILURES + 3
    assert {e.actor for e in refusals} == {"console:127.0.0.1"}


async def test_a_forged_forwarded_header_changes_nothing_unless_the_proxy_is_trusted(
    make_console: ConsoleFactory,
) -> None:
    untrusted = await make_console(tools=(), **FAST)
    async with untrusted.client() as client:
        rotated = [
            await sign_in(client, "guess", headers={"X-Forwarded-For": f"203.0.113.{i}"})
            for i in range(FREE_FAILURES + 1)
        ]
    # Every guess counted against the real peer: rotating the header bought nothing.
    assert rotated[-1].headers["retry-after"] == "1"
    actors = {e.actor for e in await audit_rows(untrusted.app) if not e.allowed}
    assert actors == {"console:127.0.0.1"}

    trusted = await make_console(tools=(), http={"trusted_proxies": "127.0.0.1"}, **FAST)
    async with trusted.client() as client:
        behind = [
            await sign_in(
                client, "guess", headers={"X-Forwarded-For": f"198.51.100.7, 203.0.113.{i}"}
            )
            for i in range(FREE_FAILURES + 1)
        ]
    # Behind a trusted proxy the nearest untrusted hop is the client: four different ones.
    assert all(r.headers["retry-after"] == "0" for r in behind)
    actors = {e.actor for e in await audit_rows(trusted.app) if not e.allowed} - actors
    assert actors == {f"console:203.0.113.{i}" for i in range(FREE_FAILURES + 1)}


async def test_signing_out_ends_the_session_for_a_copied_cookie_too(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=())
    async with console.client() as owner, console.client() as thief:
        assert (await sign_in(owner)).status_code == 303
        thief.cookies.set("parley_console", owner.cookies["parley_console"], path="/admin")
        assert await signed_in(thief)
        page = await owner.get("/admin/channels")
        out = await owner.post("/admin/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        assert not await signed_in(thief)
        assert not await signed_in(owner)
        assert (await owner.post("/admin/logout", data={"csrf": "x"})).status_code == 303


async def test_a_session_ends_when_idle_and_at_its_absolute_end_however_busy(
    make_console: ConsoleFactory,
) -> None:
    console = await make_console(tools=(), console_session_hours=1, console_session_max_hours=8)
    async with console.client() as client:
        await sign_in(client)
        async with console.app.database.read() as session:
            [before] = (await session.exec(ConsoleSession.__table__.select())).all()  # type: ignore[call-overload]
        for _ in range(3):
            assert await signed_in(client)
        async with console.app.database.read() as session:
            [after] = (await session.exec(ConsoleSession.__table__.select())).all()  # type: ignore[call-overload]
        assert after.expires_at == before.expires_at  # use never extends the lifetime
        assert after.expires_at - after.created_at == timedelta(hours=8)

        await age_sessions(console.app, seen_at=utcnow() - timedelta(minutes=61))
        assert not await signed_in(client)  # idle for more than an hour

        await sign_in(client)
        await age_sessions(console.app, expires_at=utcnow() - timedelta(seconds=1))
        assert not await signed_in(client)  # past its absolute end, though just used


async def test_every_replica_sees_a_session_and_a_new_password_ends_it(
    make_console: ConsoleFactory,
) -> None:
    first = await make_console(tools=())
    second = await make_console(tools=())
    renamed = await make_console(tools=(), password="a new password entirely")
    async with first.client() as client:
        await sign_in(client)
        cookie = client.cookies["parley_console"]
    for replica, expected in ((second, True), (renamed, False)):
        async with replica.client() as client:
            client.cookies.set("parley_console", cookie, path="/admin")
            assert await signed_in(client) is expected


async def test_on_postgresql_replicas_share_sessions_and_sign_out_ends_them_everywhere(
    make_console: ConsoleFactory, postgres_url: str
) -> None:
    async with fresh_postgres_database(postgres_url) as url:
        first = await make_console(tools=(), database_url=url)
        second = await make_console(tools=(), database_url=url)
        async with first.client() as owner, second.client() as other:
            await sign_in(owner)
            other.cookies.set("parley_console", owner.cookies["parley_console"], path="/admin")
            assert await signed_in(other)
            await age_sessions(first.app, seen_at=utcnow() - timedelta(hours=3))
            assert not await signed_in(other)  # idle past the 2-hour default
            await sign_in(owner)
            other.cookies.set("parley_console", owner.cookies["parley_console"], path="/admin")
            page = await other.get("/admin/channels")
            await other.post("/admin/logout", data={"csrf": csrf_of(page.text)})
            assert not await signed_in(owner)
        await first.close()
        await second.close()


def cookie_of(response: httpx.Response, name: str = "parley_console") -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return header


async def test_the_cookie_is_httponly_strict_and_secure_by_the_rule(
    make_console: ConsoleFactory,
) -> None:
    plain = await make_console(tools=())
    public = await make_console(tools=(), http={"public_url": "https://parley.example.com"})
    proxied = await make_console(tools=(), http={"trusted_proxies": "127.0.0.0/8"})
    forced = await make_console(tools=(), console_secure_cookie="true")
    https = {"X-Forwarded-Proto": "https"}
    cases = [(plain, {}, False), (plain, https, False), (public, {}, True)]
    cases += [(proxied, https, True), (proxied, {}, False), (forced, {}, True)]
    for harness, headers, secure in cases:
        async with harness.client() as client:
            page = await client.get("/admin/login", headers=headers)
            login = cookie_of(page, "parley_console_login")
            # A browser keeps a Secure cookie from plain http; httpx would not send it back.
            token = login.split(";")[0].partition("=")[2]
            done = await client.post(
                "/admin/login",
                data={"csrf": csrf_of(page.text), "password": PASSWORD},
                headers={**headers, "Cookie": f"parley_console_login={token}"},
            )
        assert done.status_code == 303
        cookie = cookie_of(done).lower()
        for flags in (cookie, login.lower()):
            assert "httponly" in flags and "samesite=strict" in flags and "path=/admin" in flags
            assert ("; secure" in flags) is secure, (harness.app.settings.http, headers, flags)
        assert "max-age=43200" in cookie  # the absolute lifetime, 12 hours by default


async def test_a_session_names_its_password_by_a_salted_slow_tag(
    make_console: ConsoleFactory,
) -> None:
    """What the table keeps of the password lets no reader test guesses cheaply: a salt
    of each session's own and scrypt, not one HMAC every row repeats."""
    console = await make_console(tools=())
    for _ in range(2):
        async with console.client() as client:
            await sign_in(client)
            assert await signed_in(client)
    async with console.app.database.read() as session:
        rows = (await session.exec(ConsoleSession.__table__.select())).all()  # type: ignore[call-overload]
    tags = [row.password_tag for row in rows]
    assert len(tags) == 2 and tags[0] != tags[1]  # salted: equal passwords, other tags
    for tag in tags:
        kind, salt, key = tag.split("$")
        padded = salt + "=" * (-len(salt) % 4)
        expected = hashlib.scrypt(
            PASSWORD.encode(), salt=base64.urlsafe_b64decode(padded), n=2**14, r=8, p=1,
            dklen=24,
        )  # fmt: skip
        assert kind == "s" and base64.urlsafe_b64decode(key + "=" * (-len(key) % 4)) == expected
