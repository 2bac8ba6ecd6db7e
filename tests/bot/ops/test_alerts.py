"""Alerts: one message when trouble starts, one when it clears, never a flood."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.errors import ConfigError
from bot.ops.alerts import Alerts
from bot.web.overview import Overview
from integrations.telegram.doctor import telegram_check
from tests.apps import AppFactory, RecordingMessenger, wait_until
from tests.fakes.openai_server import ScriptedOpenAIServer, error_reply, text_reply
from tests.fakes.smtp import PASSWORD, USERNAME, SMTPServer
from tests.fakes.surface import RecordingSurface
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer

ALICE = UserRef("chat", "alice", "Alice")
DM = ChatRef("chat", "alice", ChatKind.DM)


async def turn(app: object, text: str = "hi") -> str:
    outcome = await app.engine.handle(  # type: ignore[attr-defined]
        IncomingMessage(chat=DM, user=ALICE, text=text), RecordingSurface()
    )
    return str(outcome.error)


async def test_a_failing_model_alerts_once_then_recovers_once(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    admin = RecordingMessenger(platform="test")
    app = await make_app(
        messengers=(admin,),
        alerts={"to": "test:U-ADMIN", "model_failures": 3, "window_minutes": 10},
    )
    llm.script(*(error_reply(500, message="upstream is down") for _ in range(5)))
    for _ in range(5):
        assert await turn(app)  # each turn fails and tells its user so
    await wait_until(lambda: len(admin.sent) >= 1)

    llm.script(text_reply("Back."), text_reply("Still here."))
    assert not await turn(app)
    assert not await turn(app)
    await wait_until(lambda: len(admin.sent) >= 2)
    await app.alerts.stop()  # let anything still under way arrive before counting

    chats = {chat for chat, _, _, _ in admin.sent}
    assert chats == {ChatRef("test", "U-ADMIN", ChatKind.DM)}
    alert, recovery = admin.texts
    assert alert.startswith("Parley alert on ")
    assert "the model (scripted) failed 3 times in 10 minute(s)" in alert
    assert recovery.startswith("Parley recovered on ")
    assert "the model (scripted) answers again" in recovery
    # The console's overview lists them, newest first.
    context = await Overview(store=app.activity_store, alerts=app.alerts).context()
    assert context["alerts"] == [recovery, alert] and context["alerts_on"] is True


async def test_trouble_that_returns_soon_after_an_alert_stays_quiet(
    llm: ScriptedOpenAIServer, make_app: AppFactory
) -> None:
    admin = RecordingMessenger(platform="test")
    app = await make_app(
        messengers=(admin,),
        alerts={"to": "test:U-ADMIN", "model_failures": 2, "repeat_minutes": 60},
    )
    llm.script(
        error_reply(500),
        error_reply(500),
        text_reply("ok"),
        error_reply(500),
        error_reply(500),
        text_reply("ok"),
    )
    for _ in range(6):
        await turn(app)
    await app.alerts.stop()

    # The second episode came within the hour: neither its alert nor its recovery is sent.
    assert [text.split(":")[0].split(" on ")[0] for text in admin.texts] == [
        "Parley alert",
        "Parley recovered",
    ]
    assert app.alerts.conditions["model"].active is False


async def test_failing_reminders_alert_by_email(
    make_app: AppFactory, smtp_server: SMTPServer
) -> None:
    app = await make_app(
        alerts={"to": "email:ops@example.com", "reminder_failures": 2},
        email={
            "host": smtp_server.host,
            "port": smtp_server.port,
            "tls": "none",
            "username": USERNAME,
            "password": PASSWORD,
            "sender": "parley@example.com",
            "allowlist": "@example.com",
        },
    )
    app.alerts.reminder_fired(late=False, failed=True)
    assert smtp_server.messages == []  # one failure is not yet trouble
    app.alerts.reminder_fired(late=True, failed=True)
    await app.alerts.stop()

    (mail,) = smtp_server.messages
    assert mail.rcpt_tos == ["ops@example.com"]
    assert mail.message["Subject"].startswith("Parley alert on ")
    assert "2 reminder deliveries failed in 10 minute(s)" in mail.message.get_content()


async def test_an_unreachable_platform_alerts_after_the_grace_and_recovers(
    telegram: FakeTelegramServer,
) -> None:
    admin = RecordingMessenger(platform="test")
    settings = Settings.load(
        env_file=None,
        alerts={"to": "test:42", "check_seconds": 0.05, "disconnected_seconds": 0},
        telegram={"bot_token": TOKEN, "base_url": telegram.base_url},
    )
    alerts = Alerts(settings.alerts, {"test": admin}.get)
    # The real getMe check against the fake Bot API, which fails three times, then answers.
    telegram.fail("getMe", 502, "Bad Gateway", times=3)
    alerts.watch([telegram_check(settings.telegram)])
    try:
        await wait_until(lambda: len(admin.sent) >= 2, within=20)
    finally:
        await alerts.stop()
    alert, recovery = admin.texts
    assert "telegram has been unreachable for " in alert
    assert "telegram is reachable again." in recovery
    assert len([c for c in telegram.calls if c.method == "getMe"]) >= 4


def test_alert_targets_must_be_qualified() -> None:
    with pytest.raises(ConfigError, match=r"PARLEY_ALERT_TO: 'ops@example.com' is not a target"):
        Settings.load(env_file=None, alerts={"to": "ops@example.com"})
