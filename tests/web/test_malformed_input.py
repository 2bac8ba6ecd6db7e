"""Malformed input gets 400 and one log line at every door, never a 500 or a traceback:
Slack events, presses and commands (signed, so only the shape is wrong), the Telegram
webhook (with its secret), the console's forms and query strings."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import pytest

from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.telegram_server import FakeTelegramServer
from tests.web.console_harness import csrf_of, sign_in
from tests.web.served import (
    HOOK_PATH,
    HOOK_SECRET,
    ServedFactory,
    fresh_unsigned,
    slack_headers,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
NOT_OBJECTS = ["[1, 2]", '"a string"', "5", "null", "{not json"]
SLACK_BODIES: list[tuple[str, str | bytes]] = [
    *[(JSON, body) for body in NOT_OBJECTS],
    (JSON, '{"type": "event_callback", "event": 5}'),
    (JSON, '{"type": "event_callback", "event": "message"}'),
    (JSON, '{"type": "event_callback", "event": {"type": "message", "channel": 5, "user": [1]}}'),
    (JSON, '{"type": "event_callback", "authorizations": 5, "event": {"type": "message"}}'),
    (JSON, '{"type": 5}'),
    ("text/plain", "hello"),
    (FORM, "payload=" + "%5B1%5D"),
    (FORM, urlencode({"payload": '"x"'})),
    (FORM, urlencode({"payload": "{not json"})),
    (FORM, urlencode({"payload": '{"type": "block_actions", "actions": 5}'})),
    (FORM, urlencode({"payload": '{"type": "block_actions", "actions": [5]}'})),
    (FORM, urlencode({"payload": '{"type": "block_actions", "user": "U1"}'})),
    (FORM, "text=%ff"),
    (FORM, urlencode({"command": "/parley", "text": "tools"})),  # no user, channel, response_url
    # Not UTF-8: checked after the signature, which is over the raw bytes.
    (JSON, b'{"type": "event_callback", "event": {"type": "message", "text": "\xff\xfe"}}'),
    (FORM, b"payload=\xff"),
    # A message or a mention without the channel it came from.
    (JSON, '{"type": "event_callback", "event": {"type": "message", "user": "U1", "ts": "1.2"}}'),
    (
        JSON,
        '{"type": "event_callback", "event": {"type": "app_mention", "user": "U1", "text": "x"}}',
    ),
]
TELEGRAM_BODIES = [
    *[(JSON, body) for body in NOT_OBJECTS],
    (JSON, '{"message": 5}'),
    (JSON, '{"update_id": 1, "message": 5}'),
    (JSON, '{"update_id": true}'),
    (JSON, '{"update_id": 2, "message": {"message_id": 1, "chat": "me", "text": "hi"}}'),
    (JSON, '{"update_id": 3, "message": {"message_id": 1, "chat": {"id": 1}, "text": 5}}'),
    (JSON, '{"update_id": 4, "callback_query": {"id": 5, "from": {"id": 1}}}'),
    (JSON, b'{"update_id": 5, "x": "\xff"}'.decode("latin-1")),
    ("text/plain", '{"update_id": 6}'),
]


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("content_type", "body"), SLACK_BODIES)
async def test_slack_answers_a_signed_malformed_body_with_400(
    make_served: ServedFactory,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    content_type: str,
    body: str | bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = await make_served()
    raw = body if isinstance(body, bytes) else body.encode()
    with caplog.at_level(logging.WARNING):
        async with served.client() as client:
            response = await client.post(
                "/slack/events", content=raw, headers=slack_headers(raw, content_type)
            )
    assert response.status_code == 400, response.text
    assert "slack: refused a request from 127.0.0.1 with 400" in caplog.text
    no_traceback(caplog)
    assert llm.requests == [] and slack.count("chat.postMessage") == 0


async def test_slack_answers_an_unsigned_body_that_is_not_utf8_with_401(
    make_served: ServedFactory, llm: ScriptedOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    served = await make_served()
    with caplog.at_level(logging.WARNING):
        async with served.client() as client:
            response = await client.post(
                "/slack/events", content=b'{"type": "\xff"}', headers=fresh_unsigned()
            )
    assert response.status_code == 401
    assert "slack: refused a request from 127.0.0.1 with 401: invalid signature" in caplog.text
    no_traceback(caplog)
    assert llm.requests == []


@pytest.mark.parametrize(("content_type", "body"), TELEGRAM_BODIES)
async def test_the_telegram_webhook_answers_a_malformed_update_with_400(
    make_served: ServedFactory,
    llm: ScriptedOpenAIServer,
    telegram: FakeTelegramServer,
    content_type: str,
    body: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = await make_served()
    headers = {"Content-Type": content_type, "X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET}
    with caplog.at_level(logging.WARNING):
        async with served.client() as client:
            response = await client.post(HOOK_PATH, content=body.encode("latin-1"), headers=headers)
    assert response.status_code == 400
    assert "telegram webhook: unreadable update refused with 400" in caplog.text
    no_traceback(caplog)
    assert llm.requests == [] and telegram.calls_of("sendMessage") == []


async def test_the_console_answers_bad_forms_and_numbers_with_400_or_404(
    make_served: ServedFactory, caplog: pytest.LogCaptureFixture
) -> None:
    served = await make_served()
    huge = "1" * 23
    with caplog.at_level(logging.WARNING):
        async with served.client() as client:
            page = await client.get("/admin/login")
            csrf = csrf_of(page.text)
            as_json = await client.post("/admin/login", json={"csrf": csrf, "password": "x"})
            not_utf8 = await client.post(
                "/admin/login",
                content=b"csrf=" + csrf.encode() + b"&password=%ff",
                headers={"Content-Type": FORM},
            )
            assert (await sign_in(client)).status_code == 303
            channels = await client.get("/admin/channels")
            token = csrf_of(channels.text)
            text_post = await client.post(
                "/admin/users/1/timezone",
                content=f"csrf={token}&timezone=UTC",
                headers={"Content-Type": "text/plain"},
            )
            gets = {
                url: (await client.get(url)).status_code
                for url in (
                    "/admin/channels?page=²",
                    "/admin/channels?page=" + huge,
                    "/admin/users?page=-1",
                    "/admin/conversations?channel=²",
                    "/admin/channels/" + huge,
                    "/admin/conversations/" + huge,
                    "/admin/conversations/99999999999999999999",
                )
            }
            bad_id_post = await client.post(f"/admin/reminders/{huge}/cancel", data={"csrf": token})
    assert (as_json.status_code, not_utf8.status_code, text_post.status_code) == (400, 400, 400)
    assert gets == {
        "/admin/channels?page=²": 400,
        "/admin/channels?page=" + huge: 400,
        "/admin/users?page=-1": 400,
        "/admin/conversations?channel=²": 400,
        "/admin/channels/" + huge: 404,
        "/admin/conversations/" + huge: 404,
        "/admin/conversations/99999999999999999999": 404,
    }
    assert bad_id_post.status_code == 404
    assert "console: refused a POST to /admin/login with 400" in caplog.text
    assert "console: refused /admin/channels with 400: page must be a whole number" in caplog.text
    no_traceback(caplog)
