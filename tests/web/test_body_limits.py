"""Every HTTP door bounds the body it reads: 413 for a declared or a streamed body past
the endpoint's limit, before anyone reads it whole."""

from __future__ import annotations

import logging
import time

import pytest

from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.telegram_server import private_message
from tests.web.served import (
    HOOK_PATH,
    HOOK_SECRET,
    ServedFactory,
    chunks,
    dumps,
    fresh_unsigned,
    slack_headers,
    status_with_body_unfinished,
)

LIMITS = {
    "slack_events_max_bytes": 4096,
    "slack_forms_max_bytes": 8192,
    "telegram_max_bytes": 4096,
    "console_max_bytes": 2048,
    "max_bytes": 1024,
}
TELEGRAM = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# path, headers that pass every check made before the body is read, the limit there
DOORS = [
    ("/slack/events", fresh_unsigned(), 4096),
    ("/slack/events", fresh_unsigned("application/x-www-form-urlencoded"), 8192),
    (HOOK_PATH, TELEGRAM, 4096),
    ("/admin/login", FORM, 2048),
]


@pytest.mark.parametrize(("path", "headers", "limit"), DOORS)
async def test_a_declared_or_streamed_body_over_the_limit_gets_413(
    make_served: ServedFactory,
    llm: ScriptedOpenAIServer,
    path: str,
    headers: dict[str, str],
    limit: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = await make_served(http=LIMITS)
    if "X-Slack-Request-Timestamp" in headers:
        # DOORS is built at collection: on a busy machine the suite reaches this test more
        # than Slack's five minutes later, and a stale timestamp is refused (401) first.
        headers = {**headers, "X-Slack-Request-Timestamp": str(int(time.time()))}
    with caplog.at_level(logging.WARNING):
        async with served.client() as client:
            declared = await client.post(path, content=b"x" * (limit + 1), headers=headers)
            streamed = await client.post(path, content=chunks(limit * 4, 1000), headers=headers)
            within = await client.post(path, content=chunks(limit, 1000), headers=headers)

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.text == f"Request body too large: at most {limit} bytes here.\n"
    assert within.status_code != 413  # read, then refused for what it says
    assert f"limit {limit}" in caplog.text
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert llm.requests == []


async def test_every_other_path_takes_the_general_limit(make_served: ServedFactory) -> None:
    served = await make_served(http=LIMITS)
    async with served.client() as client:
        health = await client.post("/healthz", content=b"x" * 1025)
        unknown = await client.post("/no/such/path", content=b"x" * 1025)
        small = await client.post("/no/such/path", content=b"x" * 1024)
    assert (health.status_code, unknown.status_code, small.status_code) == (413, 413, 404)


async def test_the_json_and_form_limits_of_slack_are_apart(
    make_served: ServedFactory, slack: FakeSlackServer
) -> None:
    served = await make_served(http=LIMITS)
    command = (
        b"command=%2Fparley&text=help&user_id=UALICE&channel_id=D0ALICE&team_id=T0"
        b"&response_url=http%3A%2F%2F127.0.0.1%3A1%2Fresponse"
    )
    padded_command = command + b"&pad=" + b"p" * 5000  # over the JSON limit, within the form's
    padded_event = dumps({"type": "url_verification", "challenge": "c" * 5000})
    async with served.client() as client:
        form = await client.post(
            "/slack/events",
            content=padded_command,
            headers=slack_headers(padded_command, "application/x-www-form-urlencoded"),
        )
        event = await client.post(
            "/slack/events", content=padded_event, headers=slack_headers(padded_event)
        )
    assert form.status_code == 200 and "Parley" in form.text
    assert event.status_code == 413


async def test_the_default_limits_take_a_real_update_and_refuse_a_megabyte_more(
    make_served: ServedFactory,
) -> None:
    served = await make_served()
    update = dumps({"update_id": 7, **private_message(4001, "hi " * 1000)})
    async with served.client() as client:
        fine = await client.post(HOOK_PATH, content=update, headers=TELEGRAM)
        huge = await client.post(HOOK_PATH, content=chunks(2 * 1_048_576), headers=TELEGRAM)
    assert (fine.status_code, huge.status_code) == (200, 413)


async def test_an_unsigned_body_is_never_read_to_be_refused(
    make_served: ServedFactory,
) -> None:
    served = await make_served()
    assert served.app.web is not None
    port = served.app.web.port
    stale = {**fresh_unsigned(), "X-Slack-Request-Timestamp": "1000000000"}
    missing = {"Content-Type": "application/json"}
    assert await status_with_body_unfinished(port, "/slack/events", missing) == 401
    assert await status_with_body_unfinished(port, "/slack/events", stale) == 401
    wrong_secret = {**TELEGRAM, "X-Telegram-Bot-Api-Secret-Token": "wrong"}
    assert await status_with_body_unfinished(port, HOOK_PATH, wrong_secret) == 403
