"""The `parley` command as a user runs it: a real process, real signals, real HTTP."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.processes import PARLEY, REPO, environment, ready_run


def parley(
    tmp_path: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PARLEY, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=environment(tmp_path, **env),
        check=False,
    )


def test_run_without_a_key_stops_with_one_line_naming_the_variables(tmp_path: Path) -> None:
    result = parley(tmp_path, "run")
    assert result.returncode == 2
    sources, *errors = result.stderr.strip().splitlines()
    assert sources_of(sources).startswith(f"no .env file in {tmp_path}"), result.stderr
    assert len(errors) == 1, result.stderr
    assert "OPENAI_API_KEY" in errors[0] and "OPENAI_BASE_URL" in errors[0]
    assert "Traceback" not in result.stderr


def sources_of(line: str) -> str:
    """The sources statement of a log line (`... INFO parley: settings from ...`)."""
    match = re.search(r"parley: ((?:settings from|no \.env file in) .*)$", line)
    assert match, line
    return match.group(1)


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    result = subprocess.run(
        [*PARLEY, "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"parley {version('parley')}\n"


COMMANDS = [
    (),
    ("run",),
    ("chat",),
    ("migrate",),
    ("tools",),
    ("tools", "list"),
    ("doctor",),
    ("reminders",),
    ("reminders", "list"),
    ("reminders", "cancel"),
]


# Ten processes one after another, each importing the whole application first.
@pytest.mark.timeout(600)
def test_every_command_explains_itself_with_dash_h(tmp_path: Path) -> None:
    for command in COMMANDS:
        result = parley(tmp_path, *command, "-h")
        assert result.returncode == 0, (command, result.stderr)
        assert "Usage:" in result.stdout and "--help" in result.stdout, command
    assert not (tmp_path / "data").exists()  # asking for help touches no database


def test_env_file_is_found_from_another_folder_and_named_with_its_database(
    tmp_path: Path,
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    database = project / "data" / "parley.db"
    env_file = project / ".env"
    env_file.write_text(f"DATABASE_URL=sqlite:///{database}\n")
    env = environment(tmp_path)
    del env["DATABASE_URL"]

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PARLEY, *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=elsewhere,
            env={**env, **extra},
            check=False,
        )

    first = run("--env-file", str(env_file), "migrate")
    assert first.returncode == 0, first.stderr
    assert sources_of(first.stderr.splitlines()[0]) == (
        f"settings from {env_file}; database {database} (does not exist yet)"
    )
    assert database.exists() and not (elsewhere / "data").exists()

    second = run("migrate", PARLEY_ENV_FILE=str(env_file))
    assert second.returncode == 0, second.stderr
    assert sources_of(second.stderr.splitlines()[0]) == (
        f"settings from {env_file}; database {database}"
    )

    missing = run("--env-file", str(elsewhere / ".env"), "migrate")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"parley: configuration error: --env-file/PARLEY_ENV_FILE: {elsewhere / '.env'} "
        "does not exist or is not a file"
    ]


@pytest.mark.parametrize("written", ["DATABASE_URL=sqlite+aiosqlite:///data/parley.db\n", ""])
def test_a_relative_database_of_an_env_file_is_found_from_another_folder(
    tmp_path: Path, llm: ScriptedOpenAIServer, written: str
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    env_file = project / ".env"
    env_file.write_text(
        f"OPENAI_API_KEY=sk-x\nOPENAI_BASE_URL={llm.base_url}\nPARLEY_MODEL=scripted\n{written}"
    )
    database = project / "data" / "parley.db"
    env = environment(tmp_path)
    del env["DATABASE_URL"]  # the database is the .env file's (or the default) alone

    def run(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PARLEY, "--env-file", str(env_file), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
            env=env,
            check=False,
        )

    llm.script(
        tool_call_reply(("create_reminder", {"text": "call the dentist", "in_seconds": 7200})),
        text_reply("Set."),
    )
    chat = run(project, "chat", stdin="remind me\n")
    assert chat.returncode == 0, chat.stderr

    listed = run(elsewhere, "reminders", "list")
    assert listed.returncode == 0, listed.stderr
    assert sources_of(listed.stderr.splitlines()[0]) == (
        f"settings from {env_file}; database {database}"
    )
    assert listed.stdout.rstrip().endswith("call the dentist")
    assert not (elsewhere / "data").exists()


def test_a_relative_path_from_the_environment_stays_relative_to_the_folder(
    tmp_path: Path,
) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / ".env").write_text("PARLEY_MODEL=qwen-plus\n")
    result = subprocess.run(
        [*PARLEY, "--env-file", str(project / ".env"), "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=elsewhere,
        env=environment(tmp_path, DATABASE_URL="sqlite:///here.db"),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (elsewhere / "here.db").exists() and not (project / "here.db").exists()


def test_the_sources_line_hides_a_database_password(tmp_path: Path) -> None:
    result = parley(
        tmp_path,
        "reminders",
        "list",
        DATABASE_URL="postgresql://parley:hunter2@127.0.0.1:9/parley",
    )
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.endswith("database postgresql://parley:***@127.0.0.1:9/parley"), first
    assert "hunter2" not in result.stderr + result.stdout


def test_an_invalid_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    result = parley(tmp_path, "run", OPENAI_API_KEY="sk-x", PARLEY_HTTP_PORT="eighty")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "parley: configuration error: PARLEY_HTTP_PORT: Input should be a valid integer, "
        "unable to parse string as an integer (got 'eighty')"
    ]


MISNAMED_ENV = (
    "OPENAI_API_KEY=sk-x\n"
    "PARLEY_MODEL=qwen-plus\n"
    "PARLEY_MODLE=qwen-max\n"
    "# PARLEY_MODEL=commented-out lines are not settings\n"
    "PARLEY_MODEL=qwen-turbo\n"
)
MISNAMED = [
    "PARLEY_MODLE is not a setting; did you mean PARLEY_MODEL? (in .env)",
    "TELEGRAM_TOKEN is not a setting; did you mean TELEGRAM_BOT_TOKEN? (in the environment)",
    "PARLEY_MODEL is set twice in .env (lines 2 and 5); the last one wins",
]


def test_doctor_names_mistyped_and_repeated_settings(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / ".env").write_text(MISNAMED_ENV)
    env = environment(tmp_path, TELEGRAM_TOKEN="123:abc", OPENAI_LOG="debug")
    # An address nothing listens on: the model check fails fast, the names check is read.
    env["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
    result = subprocess.run(
        [*PARLEY, "--env-file", str(project / ".env"), "doctor", "--timeout", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=elsewhere,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    line = next(x for x in result.stdout.splitlines() if "setting names" in x)
    assert line == "FAIL  setting names: " + "; ".join(MISNAMED) + (
        ". Fix: correct or remove them (.env.example lists every setting)."
    )
    assert "OPENAI_LOG" not in result.stdout  # read by the OpenAI SDK itself
    assert "sk-x" not in result.stdout + result.stderr


def test_doctor_passes_the_names_of_a_clean_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-x\nPARLEY_MODEL=qwen-plus\n")
    result = parley(tmp_path, "doctor", "--timeout", "5", OPENAI_BASE_URL="http://127.0.0.1:9/v1")
    assert "ok    setting names: no unknown or repeated names" in result.stdout.splitlines()


def test_run_names_mistyped_and_repeated_settings_at_start(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(MISNAMED_ENV.replace("OPENAI_API_KEY=sk-x\n", "PARLEY_X=1\n"))
    result = parley(tmp_path, "run", TELEGRAM_TOKEN="123:abc")
    assert result.returncode == 2  # no model key: it stops, after naming what is misnamed
    lines = result.stderr.strip().splitlines()
    assert sources_of(lines[0]).startswith(f"settings from {tmp_path / '.env'}")
    warnings = [line.split("WARNING parley: ", 1)[1] for line in lines if " WARNING " in line]
    assert warnings == [
        "PARLEY_X is not a setting (in .env)",
        MISNAMED[0],
        MISNAMED[1],
        MISNAMED[2],
    ]


def test_settings_are_read_from_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PARLEY_DEFAULT_TIMEZONE=Nowhere/City\n")
    result = parley(tmp_path, "migrate")
    assert result.returncode == 2
    assert "PARLEY_DEFAULT_TIMEZONE" in result.stderr and "Traceback" not in result.stderr


def test_migrate_creates_the_database(tmp_path: Path) -> None:
    result = parley(tmp_path, "migrate")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "parley.db").exists()
    assert "up to date" in result.stdout


def test_tools_lists_every_tool_with_its_schema(tmp_path: Path) -> None:
    result = parley(tmp_path, "tools", "--json")
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    schema = listing["get_current_time"]["parameters"]
    assert schema["properties"]["timezone"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert schema["required"] == ["timezone"]
    assert schema["additionalProperties"] is False


def test_run_serves_healthz_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    run, url = ready_run(tmp_path, OPENAI_API_KEY="sk-secret-value", OPENAI_BASE_URL=llm.base_url)
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            health = json.loads(response.read())
        run.process.send_signal(signal.SIGINT)
        _, log = run.finish(within=20)
    finally:
        run.stop()
    assert health == {"status": "ok"}
    assert run.returncode == 0, log
    assert "Traceback" not in log and "sk-secret-value" not in log
    assert "no chat platform configured" in log, log


def test_run_stops_cleanly_on_sigterm(tmp_path: Path, llm: ScriptedOpenAIServer) -> None:
    run, _ = ready_run(tmp_path, OPENAI_API_KEY="sk-x", OPENAI_BASE_URL=llm.base_url)
    try:
        run.process.send_signal(signal.SIGTERM)
        _, log = run.finish(within=20)
    finally:
        run.stop()
    assert run.returncode == 0, log
    assert "stopped" in log


def test_chat_streams_shows_tools_and_remembers_across_runs(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    env = {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": llm.base_url, "PARLEY_MODEL": "scripted"}
    llm.script(
        tool_call_reply(("get_current_time", {"timezone": "Asia/Shanghai"})),
        text_reply("It is morning in Shanghai."),
    )
    first = parley(tmp_path, "chat", stdin="what time is it in Shanghai?\n", **env)
    assert first.returncode == 0, first.stderr
    assert "It is morning in Shanghai." in first.stdout
    assert "→ get_current_time" in first.stdout and "← get_current_time" in first.stdout
    assert "Asia/Shanghai" in first.stdout
    assert "\x1b[" not in first.stdout  # not a terminal: no colour codes

    llm.script(text_reply("You asked about Shanghai."))
    second = parley(tmp_path, "chat", stdin="what did I ask?\n", **env)
    assert second.returncode == 0, second.stderr
    sent = [m["content"] for m in llm.requests[-1]["messages"]]
    assert sent[1] == "what time is it in Shanghai?" and sent[-1] == "what did I ask?"

    llm.script(text_reply("Fresh start."))
    third = parley(tmp_path, "chat", stdin="/reset\nhello\n", **env)
    assert third.returncode == 0, third.stderr
    assert "new conversation" in third.stdout
    assert [m["role"] for m in llm.requests[-1]["messages"]] == ["system", "user"]


def test_chat_keeps_an_mcp_servers_stderr_and_the_sdks_tracebacks_out_of_the_terminal(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    config = tmp_path / "mcp.json"
    server = {
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_server"],
        "cwd": str(REPO),
        "env": {"FAKE_MCP_STDERR": "fake banner 4711", "FAKE_MCP_STRAY_STDOUT": "1"},
        "confirm": "never",
    }
    config.write_text(json.dumps({"servers": {"fake": server}}), encoding="utf-8")
    llm.script(tool_call_reply(("fake_echo", {"text": "hi"})), text_reply("It echoed."))
    result = parley(
        tmp_path,
        "chat",
        stdin="echo hi\n",
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL=llm.base_url,
        PARLEY_MODEL="scripted",
        PARLEY_MCP_CONFIG=str(config),
        PARLEY_DEFAULT_TOOLS_DM="all,mcp:fake",
    )
    assert result.returncode == 0, result.stderr
    assert "← fake_echo: echo: hi" in result.stdout and "It echoed." in result.stdout
    terminal = result.stdout + result.stderr
    assert "fake banner 4711" not in terminal and "Traceback" not in terminal
    # The SDK's complaint about the stray stdout line is one line of the log, no more.
    [sdk] = [line for line in result.stderr.splitlines() if "mcp.client" in line]
    assert "Failed to parse JSONRPC message from server" in sdk
    assert all(line.startswith(("parley: ", "20")) for line in result.stderr.splitlines())


def test_chat_tells_the_user_when_the_model_is_down(tmp_path: Path) -> None:
    result = parley(
        tmp_path,
        "chat",
        stdin="hi\n",
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        PARLEY_LLM_MAX_RETRIES="0",
    )
    assert result.returncode == 0
    assert "unreachable" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_tools_list_shows_builtin_and_mcp_tools_with_source_and_schema(tmp_path: Path) -> None:
    config = tmp_path / "mcp.toml"
    config.write_text(
        f'[servers.fake]\ncommand = "{sys.executable}"\nargs = ["-m", "tests.fakes.mcp_server"]\n'
        f'cwd = "{REPO}"\nallowed_tools = ["add", "echo"]\n',
        encoding="utf-8",
    )
    result = parley(tmp_path, "tools", "list", "--json", PARLEY_MCP_CONFIG=str(config))
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    sources = {name: entry["source"] for name, entry in listing.items()}
    assert {name: source for name, source in sources.items() if source != "builtin"} == {
        "fake_add": "mcp:fake",
        "fake_echo": "mcp:fake",
    }
    assert sources["get_current_time"] == "builtin"
    assert listing["fake_add"]["parameters"]["required"] == ["a", "b"]

    text = parley(tmp_path, "tools", "list", PARLEY_MCP_CONFIG=str(config))
    assert text.returncode == 0, text.stderr
    assert "fake_echo  [mcp:fake] (asks the user to confirm)" in text.stdout
    assert '"properties": {"text"' in text.stdout

    chosen = parley(
        tmp_path,
        "tools",
        "list",
        "--for",
        "repeat this text back",
        PARLEY_MCP_CONFIG=str(config),
        PARLEY_MAX_OFFERED_TOOLS="1",
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "offered for 'repeat this text back' (PARLEY_MAX_OFFERED_TOOLS=1)" in chosen.stdout
    assert "get_current_time  [builtin] offered" in chosen.stdout  # built-in: always
    assert "fake_echo  [mcp:fake] (asks the user to confirm) not offered" in chosen.stdout


def test_reminders_list_and_cancel_from_the_command_line(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    env = {"OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": llm.base_url, "PARLEY_MODEL": "scripted"}
    llm.script(
        tool_call_reply(
            ("create_reminder", {"text": "call the dentist", "in_seconds": 7200}),
            (
                "create_reminder",
                {"text": "standup", "at": "2099-01-05T08:30", "repeat": "weekdays"},
            ),
        ),
        text_reply("Both are set."),
    )
    chat = parley(tmp_path, "chat", stdin="remind me\n", **env)
    assert chat.returncode == 0, chat.stderr

    listed = parley(tmp_path, "reminders", "list")  # needs no API key
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 2
    assert re.match(
        r"^\s*1  \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  console:\S+  message  once  call the dentist$",
        lines[0],
    )
    assert lines[1].endswith("message  30 8 * * mon-fri  standup")

    cancelled = parley(tmp_path, "reminders", "cancel", "1")
    again = parley(tmp_path, "reminders", "cancel", "1")
    after = parley(tmp_path, "reminders", "list", "--all")

    assert cancelled.returncode == 0 and "reminder 1 cancelled" in cancelled.stdout
    assert again.returncode == 1 and "no pending reminder 1" in again.stderr
    assert "call the dentist  [cancelled]" in after.stdout
    # Each attempt is in the audit log, as a cancel from the console would be.
    with sqlite3.connect(tmp_path / "data" / "parley.db") as db:
        rows = db.execute(
            "SELECT actor, action, surface, allowed, details FROM audit_log ORDER BY id"
        ).fetchall()
    assert [(actor.split(":")[0], *rest) for actor, *rest in rows] == [
        ("cli", "reminder.cancel", "cli", 1, '{"reminder_id": 1}'),
        ("cli", "reminder.cancel", "cli", 0, '{"reminder_id": 1, "reason": "not pending"}'),
    ]
    assert rows[0][0] != "cli:"  # names who ran it
