"""The reference MCP servers, installed from PyPI and npm, as real parts: through
`parley chat` driven by the scripted model (a real process, as a user runs it), and
through Parley's MCP client where a test needs to look inside.

time, fetch and git are the official Python servers (2026-07-28, no subscriptions);
server-everything is the official TypeScript reference server (a 2025-11-25 handshake
server with sessions), over stdio and over streamable HTTP."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from bot.toolkit import ToolRegistry
from tests.bot.test_cli import parley
from tests.fakes.http import FakeServer, ThreadedServer
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    ScriptedReply,
    text_reply,
    tool_call_reply,
)
from tests.tools.real_mcp_servers import (
    EverythingHTTP,
    everything_stdio,
    install_everything,
    python_server,
)
from tests.tools.test_mcp import load_config_from, wait_until
from tools.mcp import MCPServerLink

PAGE = "<html><body><h1>Parley test page</h1><p>The secret word is tangerine.</p></body></html>"


def chat(
    tmp_path: Path, llm: ScriptedOpenAIServer, servers: dict[str, Any], *lines: str
) -> subprocess.CompletedProcess[str]:
    """`parley chat` with `servers` as its MCP servers (all of their tools enabled), the
    user typing `lines`."""
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    result = parley(
        tmp_path,
        "chat",
        stdin="".join(f"{line}\n" for line in lines),
        OPENAI_API_KEY="sk-x",
        OPENAI_BASE_URL=llm.base_url,
        PARLEY_MODEL="scripted",
        PARLEY_MCP_CONFIG=str(config),
        PARLEY_DEFAULT_TOOLS_DM=",".join(["all", *(f"mcp:{name}" for name in servers)]),
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result


def tool_results(llm: ScriptedOpenAIServer) -> dict[str, str]:
    """What the model was sent back for each tool call (by the call's function name)."""
    names: dict[str, str] = {}
    results: dict[str, str] = {}
    for request in llm.requests:
        for item in request["messages"]:
            for call in item.get("tool_calls") or ():
                names[call["id"]] = call["function"]["name"]
            if item["role"] == "tool":
                results[names[item["tool_call_id"]]] = item["content"]
    return results


def test_the_time_server_tells_and_converts_times_in_parley_chat(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    llm.script(
        tool_call_reply(
            ("time_get_current_time", {"timezone": "Asia/Shanghai"}),
            (
                "time_convert_time",
                {
                    "source_timezone": "Europe/Berlin",
                    "time": "12:00",
                    "target_timezone": "Asia/Tokyo",
                },
            ),
        ),
        text_reply("Done with time."),
    )
    servers = {"time": {**python_server("mcp_server_time"), "trusted": True}}

    result = chat(tmp_path, llm, servers, "what time is it in Shanghai, and noon in Berlin?")

    assert "Done with time." in result.stdout
    assert "← time_get_current_time" in result.stdout and "✗" not in result.stdout
    results = tool_results(llm)
    now = json.loads(results["time_get_current_time"])
    assert now["timezone"] == "Asia/Shanghai" and now["datetime"]
    converted = json.loads(results["time_convert_time"])
    assert converted["source"]["timezone"] == "Europe/Berlin"
    assert converted["target"]["timezone"] == "Asia/Tokyo"
    assert converted["target"]["datetime"].endswith(("20:00:00+09:00", "19:00:00+09:00"))


class PageServer(FakeServer):
    """A local web page and a robots.txt that lets every agent fetch it."""

    def __init__(self) -> None:
        self.url = ""
        self.paths: list[str] = []
        super().__init__(ThreadedServer(self._app, name="fake-page"))

    def started(self, root: str) -> None:
        self.url = f"{root}/page"

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        self.paths.append(scope["path"])
        body, kind, status = PAGE.encode(), b"text/html; charset=utf-8", 200
        if scope["path"] == "/robots.txt":
            body, kind = b"User-agent: *\nAllow: /\n", b"text/plain"
        elif scope["path"] != "/page":
            body, kind, status = b"not found", b"text/plain", 404
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]}
        )
        await send({"type": "http.response.body", "body": body})


def test_the_fetch_server_reads_a_local_page_in_parley_chat(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    with PageServer() as page:
        llm.script(tool_call_reply(("fetch_fetch", {"url": page.url})), text_reply("Tangerine."))
        # Loopback addresses are refused unless allowed; robots.txt is served and obeyed.
        server = python_server("mcp_server_fetch", "--allow-private-ips")
        result = chat(tmp_path, llm, {"fetch": {**server, "trusted": True}}, "read the page")
    assert "Tangerine." in result.stdout
    fetched = tool_results(llm)["fetch_fetch"]
    assert "The secret word is tangerine." in fetched and "Parley test page" in fetched
    assert page.paths == ["/robots.txt", "/page"]


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, timeout=30)


def test_the_git_server_shows_status_and_log_of_a_repository_in_parley_chat(
    tmp_path: Path, llm: ScriptedOpenAIServer
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "Test")
    (repo / "notes.txt").write_text("hello\n", encoding="utf-8")
    git(repo, "add", "notes.txt")
    git(repo, "commit", "-q", "-m", "first commit of the test")
    (repo / "notes.txt").write_text("hello again\n", encoding="utf-8")
    llm.script(
        tool_call_reply(
            ("git_git_status", {"repo_path": str(repo)}),
            ("git_git_log", {"repo_path": str(repo), "max_count": 5}),
        ),
        text_reply("One commit, one change."),
    )
    server = python_server("mcp_server_git", "--repository", str(repo))

    result = chat(tmp_path, llm, {"git": {**server, "trusted": True}}, "what changed?")

    assert "One commit, one change." in result.stdout
    results = tool_results(llm)
    assert "notes.txt" in results["git_git_status"] and "main" in results["git_git_status"]
    assert "first commit of the test" in results["git_git_log"]


def test_server_everything_structured_output_and_a_long_running_tool_with_progress_in_chat(
    tmp_path: Path, llm: ScriptedOpenAIServer, everything_package: Path
) -> None:
    llm.script(
        tool_call_reply(("everything_get-structured-content", {"location": "Chicago"})),
        # 3 s in all, past its 2 s timeout: each progress report restarts it.
        tool_call_reply(("everything_trigger-long-running-operation", {"duration": 3, "steps": 3})),
        text_reply("Rainy in Chicago; the long job finished."),
    )
    server = everything_stdio(everything_package, trusted=True, call_timeout=2)

    result = chat(tmp_path, llm, {"everything": server}, "weather, then the long job")

    assert "Rainy in Chicago; the long job finished." in result.stdout
    results = tool_results(llm)
    weather = json.loads(results["everything_get-structured-content"])
    assert weather == {"temperature": 36, "conditions": "Light rain / drizzle", "humidity": 82}
    assert results["everything_trigger-long-running-operation"] == (
        "Long running operation completed. Duration: 3 seconds, Steps: 3."
    )
    assert "… everything_trigger-long-running-operation: 1 of 3" in result.stdout
    # Its banner went to the log, not to the terminal.
    assert "Starting default (STDIO) server" not in result.stdout + result.stderr


def test_server_everything_over_http_restarted_mid_conversation_costs_no_failed_call(
    tmp_path: Path, llm: ScriptedOpenAIServer, everything_http: EverythingHTTP
) -> None:
    turns = iter(
        [
            lambda: tool_call_reply(("everything_echo", {"message": "before"})),
            lambda: text_reply("Said before."),
            restart_then(
                everything_http, tool_call_reply(("everything_echo", {"message": "after"}))
            ),
            lambda: text_reply("Said after."),
        ]
    )
    llm.set_responder(lambda _request: next(turns)())
    server = {"url": everything_http.url, "trusted": True}

    result = chat(tmp_path, llm, {"everything": server}, "say before", "say after")

    assert everything_http.starts == 2  # a new instance answered the second turn
    assert "Said before." in result.stdout and "Said after." in result.stdout
    assert "✗" not in result.stdout
    # The SDK's warnings about the forgotten session stay out of the terminal too.
    assert "WARNING" not in result.stderr and "mcp.client" not in result.stderr
    echoes = [
        item["content"]
        for request in llm.requests
        for item in request["messages"]
        if item["role"] == "tool"
    ]
    assert echoes[-1] == "Echo: after" and "Echo: before" in echoes


def restart_then(everything: EverythingHTTP, reply: ScriptedReply) -> Callable[[], ScriptedReply]:
    """When the second turn reaches the model: a new server instance, then `reply`."""

    def turn() -> ScriptedReply:
        everything.restart()
        return reply

    return turn


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_task_only_tool_of_server_everything_is_not_offered_and_logged_once(
    everything_package: Path,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    transport: str,
) -> None:
    caplog.set_level(logging.INFO)
    registry = ToolRegistry()
    if transport == "stdio":
        entry = everything_stdio(everything_package)
    else:
        entry = {"url": request.getfixturevalue("everything_http").url}
    [config] = load_config_from({"everything": entry})
    link = MCPServerLink(config, registry, ping_interval=0.1)
    link.start()
    try:
        await link.wait_listed(30)
        assert link.available, link.last_error
        assert registry.get("everything_get-sum") is not None
        # Offered to a client that advertises elicitation (the forms are asked elsewhere).
        assert registry.get("everything_trigger-elicitation-request") is not None
        # `execution.taskSupport: "required"`: it could only fail, so it is not there.
        assert registry.get("everything_simulate-research-query") is None
        await wait_until(lambda: link.listings >= 3)  # listed again: still one log line
    finally:
        await link.stop()
    [line] = [r for r in caplog.records if "runs only as a task" in r.getMessage()]
    assert "simulate-research-query" in line.getMessage()


def test_without_npm_server_everything_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where npm is absent the fixture skips server-everything's tests (and only there)."""
    monkeypatch.setenv("PATH", "")
    with pytest.raises(FileNotFoundError, match="npm"):
        install_everything()
