"""A one-platform deployment imports only what it uses (peak RSS: docs/benchmarks.md).

Each case runs in a fresh interpreter: the composition root is built and started for a
Telegram-only or Slack-only bot on an OpenAI-compatible provider, against a database
already at the newest migration (a restart), then `sys.modules` is read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import REPO

PROBE = """
import asyncio, json, os, sys
from bot.storage import migrate
from bot.app import Application
from bot.config import Settings
asyncio.run(migrate(os.environ["DATABASE_URL"]))
fresh = "alembic" in sys.modules
if sys.argv[1] == "restart":
    print(json.dumps({"fresh": fresh}))
    raise SystemExit
app = Application(Settings.load(env_file=None))
asyncio.run(app.start())
import bot.llm.openai_compat  # the turn path
print(json.dumps({"fresh": fresh, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""

SLACK = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "secret"}
TELEGRAM = {"TELEGRAM_BOT_TOKEN": "7000001:TEST-token_abcdefghijklmnopqrstuvwxyz"}


def probe(tmp_path: Path, mode: str, **env: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'parley.db'}",
            "OPENAI_API_KEY": "sk-test",
            **env,
        },
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(
    ("env", "absent", "present"),
    [
        (TELEGRAM, {"slack_sdk", "slack_bolt"}, {"telegram"}),
        (SLACK, {"telegram"}, {"slack_bolt"}),
    ],
    ids=["telegram only", "slack only"],
)
def test_a_one_platform_restart_imports_only_what_it_uses(
    tmp_path: Path, env: dict[str, str], absent: set[str], present: set[str]
) -> None:
    first = probe(tmp_path, "restart", **env)
    assert first["fresh"] is True  # a new database: Alembic creates the schema

    modules = set(probe(tmp_path, "run", **env)["modules"])  # type: ignore[arg-type]

    unused = {"anthropic", "mcp", "jinja2", "alembic", "mako", "jsonschema"} | absent
    assert not modules & unused, sorted(modules & unused)
    assert {"openai", "sqlalchemy", "uvicorn"} | present <= modules


def test_the_command_line_imports_the_application_only_for_a_command_that_runs() -> None:
    """`parley -h`, `--version` and a mistyped command answer at once: the application
    (SQLAlchemy, the SDKs, the scheduler) is imported by the command that needs it."""
    code = (
        "import sys, json, contextlib\n"
        "from bot import cli\n"
        "with contextlib.suppress(SystemExit):\n"
        "    sys.argv = ['parley', '-h']\n"
        "    cli.cli()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "Usage: parley" in result.stdout
    assert {"bot.app", "sqlalchemy", "openai", "telegram", "slack_bolt"}.isdisjoint(modules)
