"""`parley run` with a Slack token that Slack rejects: one line naming the setting, no
traceback, no secret (a real process against the fake Slack Web API)."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.slack_server import FakeSlackServer
from tests.processes import Run

BOT_TOKEN = "xoxb-rejected-bot-token-value"
SIGNING_SECRET = "slack-signing-secret-value"
APP_TOKEN = "xapp-rejected-app-token-value"


def test_a_rejected_bot_token_ends_the_run_with_one_line_naming_the_setting(
    tmp_path: Path, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    slack.fail("auth.test", "invalid_auth")
    process = Run(
        tmp_path,
        OPENAI_API_KEY="sk-test-secret",
        OPENAI_BASE_URL=llm.base_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PARLEY_SLACK_API_URL=slack.api_url,
    )
    try:
        stdout, stderr = process.finish()
    finally:
        process.stop()
    output = stdout + stderr
    assert process.returncode == 2, stderr
    assert "Traceback" not in output
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output
    assert stderr.strip().splitlines()[-1] == (
        "parley: configuration error: SLACK_BOT_TOKEN was rejected by Slack (invalid_auth)"
    )
    assert slack.count("auth.test") == 1


def test_a_rejected_app_token_ends_a_socket_mode_run_with_one_line(
    tmp_path: Path, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    slack.fail("apps.connections.open", "invalid_auth")
    process = Run(
        tmp_path,
        OPENAI_API_KEY="sk-test-secret",
        OPENAI_BASE_URL=llm.base_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=APP_TOKEN,
        PARLEY_SLACK_API_URL=slack.api_url,
    )
    try:
        stdout, stderr = process.finish()
    finally:
        process.stop()
    output = stdout + stderr
    assert process.returncode == 2, stderr
    assert "Traceback" not in output
    assert BOT_TOKEN not in output and APP_TOKEN not in output
    assert stderr.strip().splitlines()[-1] == (
        "parley: configuration error: SLACK_APP_TOKEN was rejected by Slack (invalid_auth)"
    )
    assert slack.count("apps.connections.open") == 1
