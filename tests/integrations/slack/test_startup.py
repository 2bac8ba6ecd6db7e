"""`parley run` with a Slack token that Slack rejects: one line naming the setting, no
traceback, no secret (a real process against the fake Slack Web API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.fakes.slack_server import FakeSlackServer
from tests.processes import Run

BOT_TOKEN = "xoxb-rejected-bot-token-value"
SIGNING_SECRET = "slack-signing-secret-value"
APP_TOKEN = "xapp-rejected-app-token-value"

# (the method Slack refuses, the settings of the run, the setting the line must name)
REJECTIONS = {
    "bot token, HTTP mode": (
        "auth.test",
        {"SLACK_SIGNING_SECRET": SIGNING_SECRET},
        "SLACK_BOT_TOKEN",
    ),
    "app token, Socket Mode": (
        "apps.connections.open",
        {"SLACK_APP_TOKEN": APP_TOKEN},
        "SLACK_APP_TOKEN",
    ),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_a_rejected_token_ends_the_run_with_one_line_naming_the_setting(
    tmp_path: Path, llm: ScriptedOpenAIServer, slack: FakeSlackServer, case: str
) -> None:
    method, settings, named = REJECTIONS[case]
    slack.fail(method, "invalid_auth")
    process = Run(
        tmp_path,
        OPENAI_API_KEY="sk-test-secret",
        OPENAI_BASE_URL=llm.base_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        PARLEY_SLACK_API_URL=slack.api_url,
        **settings,
    )
    try:
        stdout, stderr = process.finish()
    finally:
        process.stop()
    output = stdout + stderr
    assert process.returncode == 2, stderr
    assert "Traceback" not in output
    assert all(secret not in output for secret in (BOT_TOKEN, *settings.values()))
    assert stderr.strip().splitlines()[-1] == (
        f"parley: configuration error: {named} was rejected by Slack (invalid_auth)"
    )
    assert slack.count(method) == 1
