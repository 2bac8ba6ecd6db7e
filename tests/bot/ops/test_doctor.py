"""`parley doctor` as an operator runs it, against the fakes: real tokens, real servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bot.storage.migrate import alembic_config
from tests.bot.test_cli import REPO, parley
from tests.fakes.mcp_server import StreamableHTTPMCPServer
from tests.fakes.openai_server import ScriptedOpenAIServer, error_reply, text_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.fakes.smtp import PASSWORD, USERNAME, SMTPServer
from tests.fakes.telegram_server import TOKEN, FakeTelegramServer

SLACK_TOKEN = "xoxb-doctor-secret-token"
OPENAI_KEY = "sk-doctor-secret-key"
HEAD = ScriptDirectory.from_config(alembic_config("sqlite:///x.db")).get_current_head()
SECRETS = (SLACK_TOKEN, OPENAI_KEY, TOKEN, "slack-signing-secret-value", PASSWORD)


@pytest.fixture
def deployment(
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    telegram: FakeTelegramServer,
    smtp_server: SMTPServer,
) -> dict[str, str]:
    """The environment of a deployment with everything configured, all of it working."""
    config = tmp_path / "mcp.toml"
    config.write_text(
        f'[servers.fake]\ncommand = "{sys.executable}"\nargs = ["-m", "tests.fakes.mcp_server"]\n'
        f'cwd = "{REPO}"\n',
        encoding="utf-8",
    )
    assert parley(tmp_path, "migrate").returncode == 0
    llm.set_default(text_reply("OK"))
    return {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": llm.base_url,
        "PARLEY_MODEL": "scripted",
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": "slack-signing-secret-value",
        "PARLEY_SLACK_API_URL": slack.api_url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "PARLEY_TELEGRAM_BASE_URL": telegram.base_url,
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_TLS": "none",
        "SMTP_USERNAME": USERNAME,
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_FROM": "parley@example.com",
        "PARLEY_MCP_CONFIG": str(config),
    }


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr, secret


def test_a_healthy_deployment_is_all_green(
    tmp_path: Path,
    deployment: dict[str, str],
    llm: ScriptedOpenAIServer,
    slack: FakeSlackServer,
    telegram: FakeTelegramServer,
) -> None:
    result = parley(tmp_path, "doctor", **deployment)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == [
        "ok    setting names",
        "ok    settings",
        "ok    database",
        "ok    model",
        "ok    email (SMTP)",
        "ok    slack",
        "ok    telegram",
        "ok    MCP server fake",
    ]
    assert f"at migration {HEAD} (newest)" in lines[2]
    assert f"accepted the login of '{USERNAME}'" in lines[4]
    assert "workspace Fake as @parley" in lines[5]
    assert "@parley_test_bot" in lines[6]
    assert lines[-1] == "all 8 checks passed"
    # The real calls, with the real credentials: a one-token model call, auth.test, getMe.
    assert llm.requests[-1]["max_tokens"] == 1
    assert llm.request_headers[-1]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert [body["_token"] for body in slack.bodies("auth.test")] == [SLACK_TOKEN]
    assert [call.method for call in telegram.calls] == ["getMe"]
    assert_no_secret(result)


def test_a_model_that_refuses_max_tokens_is_asked_again_without(
    tmp_path: Path, deployment: dict[str, str], llm: ScriptedOpenAIServer
) -> None:
    llm.set_default(None)
    llm.script(
        error_reply(
            400,
            message="Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            code="unsupported_parameter",
        ),
        text_reply("OK"),
    )
    result = parley(tmp_path, "doctor", **deployment)

    assert result.returncode == 0, result.stdout
    assert [("max_tokens" in request) for request in llm.requests] == [True, False]


WRONG_TELEGRAM_TOKEN = "7000001:WRONG-token_abcdefghijklmnopqrstuvwx"


@pytest.mark.parametrize(
    ("broken", "change", "expected"),
    [
        (
            "slack",
            {},
            "FAIL  slack: auth.test refused SLACK_BOT_TOKEN (invalid_auth). Fix: copy the Bot "
            "User OAuth Token",
        ),
        (
            "telegram",
            {"TELEGRAM_BOT_TOKEN": WRONG_TELEGRAM_TOKEN},
            "FAIL  telegram: getMe refused TELEGRAM_BOT_TOKEN (Unauthorized). Fix: copy the token",
        ),
        (
            "model",
            {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
            "FAIL  model: cannot reach http://127.0.0.1:9/v1",
        ),
        (
            "email (SMTP)",
            {"SMTP_PASSWORD": "wrong-password-123"},
            f"FAIL  email (SMTP): 127.0.0.1:{{port}} refused the login of '{USERNAME}' (535 ",
        ),
    ],
)
def test_each_broken_part_is_one_clear_line_and_a_failing_exit(
    tmp_path: Path,
    deployment: dict[str, str],
    slack: FakeSlackServer,
    broken: str,
    change: dict[str, str],
    expected: str,
) -> None:
    if broken == "slack":
        slack.rejected_tokens.add(SLACK_TOKEN)
    result = parley(tmp_path, "doctor", **{**deployment, **change})

    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1, result.stdout
    assert failed[0].startswith(expected.format(port=deployment["SMTP_PORT"])), failed[0]
    assert "Fix: " in failed[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1] == "1 of 8 checks failed"
    assert_no_secret(result)
    for secret in ("wrong-password-123", WRONG_TELEGRAM_TOKEN):
        assert secret not in result.stdout + result.stderr


def test_a_missing_database_is_reported_not_created(tmp_path: Path) -> None:
    database = tmp_path / "data" / "parley.db"
    result = parley(
        tmp_path, "doctor", OPENAI_API_KEY="sk-x", OPENAI_BASE_URL="http://127.0.0.1:9/v1"
    )

    assert result.returncode == 1
    assert (
        f"FAIL  database: {database} does not exist. Fix: run `parley migrate` to create it"
        in result.stdout
    )
    assert not database.exists()


def test_a_database_behind_the_newest_migration_is_reported(tmp_path: Path) -> None:
    import asyncio

    from bot.storage import migrate

    url = f"sqlite:///{tmp_path / 'data' / 'parley.db'}"
    asyncio.run(migrate(url, "0003"))
    result = parley(tmp_path, "doctor")

    assert result.returncode == 1
    assert "FAIL  settings: OPENAI_API_KEY is not set. Fix: put OPENAI_API_KEY=" in result.stdout
    assert (
        f"is at migration 0003, the newest is {HEAD}. Fix: run `parley migrate`." in result.stdout
    )


async def test_a_postgres_database_at_the_newest_migration_passes(postgres_url: str) -> None:
    from bot.ops.doctor import database_check, run_checks
    from bot.storage import migrate
    from tests.databases import fresh_postgres_database

    async with fresh_postgres_database(postgres_url) as url:
        before = await run_checks([database_check(url)], within=15)
        await migrate(url)
        after = await run_checks([database_check(url)], within=15)
    assert not before[0].ok and "is at migration none" in before[0].detail
    assert after[0].ok and after[0].detail.endswith(f"at migration {HEAD} (newest)")


async def test_an_unreachable_postgres_is_one_line_without_its_password() -> None:
    from bot.ops.doctor import database_check, render, run_checks

    url = "postgresql://parley:pg-secret-pw@127.0.0.1:9/parley"
    [result] = await run_checks([database_check(url)], within=15)
    line = render(result, ["pg-secret-pw"])
    assert line.startswith("FAIL  database: cannot connect to postgresql+asyncpg://parley:***@")
    assert "Fix: check DATABASE_URL and that the database server is running." in line
    assert "pg-secret-pw" not in line


def test_an_mcp_server_that_does_not_start_and_a_stray_alert_target_are_named(
    tmp_path: Path,
) -> None:
    config = tmp_path / "mcp.toml"
    config.write_text('[servers.broken]\ncommand = "/nonexistent/mcp-server"\n', encoding="utf-8")
    assert parley(tmp_path, "migrate").returncode == 0
    result = parley(
        tmp_path,
        "doctor",
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        PARLEY_MCP_CONFIG=str(config),
        PARLEY_ALERT_TO="slack:U0123",
    )

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        "FAIL  settings: PARLEY_ALERT_TO names slack:U0123 but slack is not configured. "
        "Fix: configure slack or remove the target." in lines
    )
    [mcp] = [line for line in lines if "MCP server broken" in line]
    assert mcp.startswith("FAIL  MCP server broken: did not start or list its tools (")
    assert mcp.endswith(f"Fix: check [servers.broken] in {config}.")


def test_an_mcp_server_that_fails_after_listing_its_tools_is_not_ok(tmp_path: Path) -> None:
    with StreamableHTTPMCPServer(era="modern", broken_after_listing=True) as server:
        config = tmp_path / "mcp.toml"
        config.write_text(f'[servers.flaky]\nurl = "{server.url}"\n', encoding="utf-8")
        assert parley(tmp_path, "migrate").returncode == 0
        result = parley(
            tmp_path,
            "doctor",
            OPENAI_API_KEY="sk-x",
            OPENAI_BASE_URL="http://127.0.0.1:9/v1",
            PARLEY_MCP_CONFIG=str(config),
        )

    assert result.returncode == 1
    [mcp] = [line for line in result.stdout.splitlines() if "MCP server flaky" in line]
    assert mcp.startswith("FAIL  MCP server flaky: listed its tools, then failed: "), mcp
    assert "restart(s) after start, last error: " in mcp
    assert mcp.endswith(f"Fix: see the server's own log; check [servers.flaky] in {config}.")
