"""MCP servers as tools: real MCP servers written with the `mcp` SDK (stdio subprocess and
streamable HTTP on 127.0.0.1), the real `mcp` client, full engine turns against the
scripted model server."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from mcp_types import CLIENT_INFO_META_KEY, INTERNAL_ERROR, METHOD_NOT_FOUND
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from bot.app import Application
from bot.domain import (
    ChatKind,
    ChatRef,
    IncomingMessage,
    InputAction,
    InputAnswer,
    InputFieldKind,
    UserRef,
)
from bot.errors import ConfigError
from bot.toolkit import ToolRegistry
from tests.apps import AppFactory
from tests.fakes.mcp_server import StreamableHTTPMCPServer
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tools import ALL_TOOLS
from tools.mcp import (
    MAX_STRUCTURED_CHARS,
    MCPServerLink,
    MCPTools,
    load_config,
    public_name,
)

ROOT = Path(__file__).resolve().parents[2]
ALICE = UserRef("test", "alice", "Alice")
DM = ChatRef("test", "dm-alice", ChatKind.DM)


def stdio_server(**extra: Any) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_server"],
        "cwd": str(ROOT),
        **extra,
    }


def message(text: str) -> IncomingMessage:
    return IncomingMessage(chat=DM, user=ALICE, text=text)


@pytest.fixture
def http_mcp() -> Iterator[StreamableHTTPMCPServer]:
    with StreamableHTTPMCPServer() as server:
        yield server


McpAppFactory = Callable[..., Awaitable[Application]]


@pytest.fixture
def make_mcp_app(make_app: AppFactory, tmp_path: Path) -> McpAppFactory:
    """The one app factory (tests/apps.py) with `servers` as its MCP configuration."""

    async def make(servers: dict[str, Any], defaults: str | None = None) -> Application:
        config = tmp_path / "mcp.json"
        config.write_text(json.dumps({"servers": servers}), encoding="utf-8")
        # MCP tools that may act are off until an admin enables their server.
        on = ",".join(["all", *(f"mcp:{name}" for name in servers)])
        return await make_app(
            ALL_TOOLS,
            llm={"model": "m"},
            mcp={"config": str(config), "restart_backoff_seconds": 0.1},
            admin={"default_tools_dm": on if defaults is None else defaults},
        )

    return make


def offered(request: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in request.get("tools", [])}


async def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - polling state another task changes
            await asyncio.sleep(0.02)


async def test_stdio_server_tool_in_a_full_turn_and_a_disabled_tool_is_never_offered(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory
) -> None:
    app = await make_mcp_app(
        {"fake": stdio_server(allowed_tools=["add", "echo", "fail", "crash", "grow"])}
    )
    llm.script(tool_call_reply(("fake_add", {"a": 2, "b": 3})), text_reply("2 + 3 = 5."))
    surface = RecordingSurface()

    outcome = await app.engine.handle(message("what is 2+3?"), surface)

    assert outcome.text == "2 + 3 = 5." and not outcome.error
    tools = offered(llm.requests[0])
    assert {"fake_add", "fake_echo", "get_current_time"} <= set(tools)
    assert "fake_delete_everything" not in tools  # disabled by allowed_tools
    assert tools["fake_add"]["parameters"]["properties"]["b"]["type"] == ["integer", "null"]
    [(_, result)] = surface.finished_tools
    assert not result.is_error and json.loads(result.content) == {"total": 5}
    # Not annotated read-only, so the requesting user was asked first.
    assert surface.confirmations and surface.confirmations[0][0] == ALICE
    assert llm.requests[1]["messages"][-1]["content"] == result.content

    # The model names the disabled tool anyway: the engine refuses it, nothing runs.
    llm.script(tool_call_reply(("fake_delete_everything", {})), text_reply("I cannot."))
    surface = RecordingSurface()
    outcome = await app.engine.handle(message("delete everything"), surface)
    [refused] = outcome.tool_results
    assert refused.is_error and "no tool named 'fake_delete_everything'" in refused.content
    assert surface.finished_tools == []


async def test_tool_errors_are_error_results(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory
) -> None:
    app = await make_mcp_app({"fake": stdio_server(confirm="never")})
    llm.script(
        tool_call_reply(("fake_fail", {"reason": "testing"}), ("fake_add", {"a": "two"})),
        text_reply("Both failed."),
    )
    outcome = await app.engine.handle(message("go"), RecordingSurface())
    failed, invalid = outcome.tool_results
    assert failed.is_error and "failed on purpose: testing" in failed.content
    # Checked against the server's schema before anything is sent to it.
    assert invalid.is_error and "Invalid arguments for fake_add" in invalid.content


async def test_streamable_http_server_with_strict_nulls_and_list_changes(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, http_mcp: StreamableHTTPMCPServer
) -> None:
    app = await make_mcp_app({"web": {"url": http_mcp.url, "confirm": "never"}})
    # A strict schema makes the model send null for the optional `title`: it means "absent".
    llm.script(
        tool_call_reply(("web_echo", {"text": "hi", "title": None}), ("web_grow", {})),
        text_reply("Done."),
    )
    outcome = await app.engine.handle(message("echo hi"), RecordingSurface())
    echo, grow = outcome.tool_results
    assert (echo.content, echo.is_error) == ("echo: hi", False)
    assert grow.content == "grown"
    schema = offered(llm.requests[0])["web_echo"]["parameters"]
    assert schema["required"] == ["text", "title"] and schema["additionalProperties"] is False

    # The server announced a new tool: it is listed again and offered on the next turn.
    await wait_until(lambda: app.tools.get("web_late_tool") is not None)
    llm.script(tool_call_reply(("web_late_tool", {"word": "loud"})), text_reply("LOUD"))
    outcome = await app.engine.handle(message("shout"), RecordingSurface())
    assert outcome.tool_results[0].content == "LOUD"
    assert "web_late_tool" in offered(llm.requests[-1])


async def test_a_crashing_server_is_survived_and_restarted(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, http_mcp: StreamableHTTPMCPServer
) -> None:
    app = await make_mcp_app(
        {"fake": stdio_server(confirm="never"), "web": {"url": http_mcp.url, "confirm": "never"}}
    )
    assert app.mcp is not None
    llm.script(
        tool_call_reply(("fake_crash", {}), ("get_current_time", {"timezone": "UTC"})),
        text_reply("The server crashed."),
    )
    outcome = await app.engine.handle(message("crash it"), RecordingSurface())
    crashed, clock = outcome.tool_results
    assert crashed.is_error and "fake" in crashed.content
    assert not clock.is_error  # the built-in tool of the same round ran
    assert outcome.text == "The server crashed."

    # While it is down its tools answer "unavailable"; the other server is untouched.
    await wait_until(lambda: not app.mcp.status()["fake"])  # type: ignore[union-attr]
    assert app.mcp.status()["web"]
    # Restarted with backoff, its tools work again.
    await wait_until(lambda: app.mcp.status()["fake"])  # type: ignore[union-attr]
    llm.script(tool_call_reply(("fake_add", {"a": 1, "b": 1})), text_reply("2"))
    outcome = await app.engine.handle(message("1+1"), RecordingSurface())
    assert json.loads(outcome.tool_results[0].content) == {"total": 2}
    assert app.mcp.links[0].restarts >= 1


async def test_a_server_that_is_down_reports_its_tools_unavailable() -> None:
    registry = ToolRegistry(ALL_TOOLS)
    [config] = load_config_from({"gone": {"command": sys.executable, "args": ["-c", "pass"]}})
    mcp = MCPTools([config], registry, start_timeout=5, initial_backoff=0.05)
    await mcp.start()
    try:
        assert mcp.status() == {"gone": False}
        assert [t.name for t in registry] == [t.name for t in ALL_TOOLS]  # no MCP tool joined
        with pytest.raises(Exception, match="unavailable right now"):
            await mcp.links[0].call("anything", {})
    finally:
        await mcp.aclose()


def load_config_from(servers: dict[str, Any], suffix: str = ".json") -> list[Any]:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False) as handle:
        handle.write(json.dumps({"servers": servers}))
    try:
        return load_config(handle.name)
    finally:
        Path(handle.name).unlink()


def test_config_reads_json_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "mcp.toml"
    toml.write_text(
        '[servers.files]\ncommand = "npx"\nargs = ["-y", "server-filesystem"]\n'
        'env = {ROOT = "/srv"}\nallowed_tools = ["read_file"]\n\n'
        '[servers.search]\nurl = "http://127.0.0.1:9/mcp"\nconfirm = "never"\n',
        encoding="utf-8",
    )
    files, search = load_config(toml)
    assert (files.name, files.command, files.args, files.env) == (
        "files",
        "npx",
        ("-y", "server-filesystem"),
        {"ROOT": "/srv"},
    )
    assert files.allowed_tools == frozenset({"read_file"}) and files.source == "mcp:files"
    assert (search.url, search.confirm, search.allowed_tools) == (
        "http://127.0.0.1:9/mcp",
        "never",
        None,
    )
    json_file = tmp_path / "mcp.json"
    json_file.write_text(json.dumps({"mcpServers": {"x": {"command": "x"}}}), encoding="utf-8")
    assert [c.name for c in load_config(json_file)] == ["x"]


@pytest.mark.parametrize(
    ("servers", "problem"),
    [
        ({"a": {}}, 'either "command"'),
        ({"a": {"command": "x", "url": "http://h"}}, 'either "command"'),
        ({"a b": {"command": "x"}}, "the name must match"),
        ({"a": {"url": "ftp://h"}}, "must be http"),
        ({"a": {"command": "x", "alowed_tools": []}}, "unknown keys alowed_tools"),
        ({"a": {"command": "x", "allowed_tools": "add"}}, "list of tool names"),
        ({"a": {"command": "x", "read_only_tools": "add"}}, "read_only_tools"),
        ({"a": {"command": "x", "trusted": "yes"}}, "true or false"),
    ],
)
def test_config_errors_name_the_server_and_the_problem(
    servers: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_config_from(servers)


def test_config_file_missing_or_invalid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"PARLEY_MCP_CONFIG=.*cannot read"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


def test_names_are_namespaced_and_sanitised() -> None:
    assert public_name("github", "create_issue") == "github_create_issue"
    assert public_name("fs", "files.read/all") == "fs_files_read_all"
    assert public_name("fs", "read", taken={"fs_read"}) == "fs_read_2"
    long = public_name("server", "x" * 200)
    assert len(long) == 64 and long != public_name("server", "x" * 199)


async def test_a_handshake_era_connection_refreshes_on_the_notification(
    http_mcp: StreamableHTTPMCPServer,
) -> None:
    registry = ToolRegistry()
    [config] = load_config_from({"web": {"url": http_mcp.url}})
    link = MCPServerLink(config, registry, mode="legacy", ping_interval=0.2)
    link.start()
    try:
        await link.wait_listed(10)
        assert link.available and registry.get("web_late_tool") is None
        assert await link.call("grow", {}) == "grown"
        await wait_until(lambda: registry.get("web_late_tool") is not None)
        await asyncio.sleep(0.5)  # a few liveness pings go by without harm
        assert link.available
    finally:
        await link.stop()


async def test_an_untrusted_servers_read_only_claim_is_a_hint_and_the_call_is_confirmed(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, http_mcp: StreamableHTTPMCPServer
) -> None:
    app = await make_mcp_app({"web": {"url": http_mcp.url}})
    transfer = app.tools.get("web_transfer_money")
    assert transfer is not None and transfer.side_effect  # despite its readOnlyHint
    llm.script(
        tool_call_reply(("web_transfer_money", {"to": "mallory", "amount": 1000})),
        text_reply("Not sent."),
    )
    surface = RecordingSurface(confirm_answer=False)

    outcome = await app.engine.handle(message("what is my balance?"), surface)

    [(asker, card)] = surface.confirmations
    assert asker == ALICE and "transfer_money" in card and "mallory" in card
    assert outcome.tool_results[0].is_error and http_mcp.calls == []  # denied: nothing moved


async def test_all_does_not_switch_on_an_untrusted_servers_tools(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, http_mcp: StreamableHTTPMCPServer
) -> None:
    app = await make_mcp_app({"web": {"url": http_mcp.url}}, defaults="all")
    llm.script(text_reply("Hello."))
    await app.engine.handle(message("hi"), RecordingSurface())
    tools = offered(llm.requests[0])
    assert "get_current_time" in tools
    assert not {"web_transfer_money", "web_echo"} & set(tools)


async def test_a_trusted_server_and_listed_read_only_tools_run_without_a_question(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, http_mcp: StreamableHTTPMCPServer
) -> None:
    app = await make_mcp_app(
        {
            "bank": {"url": http_mcp.url, "trusted": True},
            "web": {"url": http_mcp.url, "read_only_tools": ["echo"]},
        }
    )
    assert app.tools.get("web_transfer_money").side_effect  # type: ignore[union-attr]
    assert not app.tools.get("web_echo").side_effect  # type: ignore[union-attr]
    assert app.tools.get("bank_delete_everything").side_effect  # type: ignore[union-attr]
    llm.script(
        tool_call_reply(
            ("bank_transfer_money", {"to": "bob", "amount": 5}), ("web_echo", {"text": "hi"})
        ),
        text_reply("Sent."),
    )
    surface = RecordingSurface()

    outcome = await app.engine.handle(message("send bob 5"), surface)

    assert [r.is_error for r in outcome.tool_results] == [False, False]
    assert surface.confirmations == []  # the operator trusts these claims
    assert http_mcp.calls == [{"tool": "transfer_money", "to": "bob", "amount": 5}]


async def test_a_changed_annotation_is_logged_and_does_not_lift_the_confirmation(
    llm: ScriptedOpenAIServer,
    make_mcp_app: McpAppFactory,
    http_mcp: StreamableHTTPMCPServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = await make_mcp_app({"web": {"url": http_mcp.url}})
    before = app.tools.get("web_delete_everything")
    assert before is not None and before.side_effect
    llm.script(tool_call_reply(("web_disguise", {})), text_reply("Done."))
    await app.engine.handle(message("disguise"), RecordingSurface())

    await wait_until(lambda: app.tools.get("web_delete_everything") is not before)
    after = app.tools.get("web_delete_everything")
    assert after is not None and after.side_effect
    [warning] = [r for r in caplog.records if "changed the annotations" in r.getMessage()]
    text = warning.getMessage()
    assert warning.levelname == "WARNING"
    assert "web" in text and "delete_everything" in text and "side-effecting" in text
    assert '"read_only_hint": true' in text


@pytest.mark.parametrize("era", ["modern", "legacy"])
async def test_a_server_of_either_protocol_era_through_the_sdks_auto_mode(era: str) -> None:
    with StreamableHTTPMCPServer(era=era) as server:  # type: ignore[arg-type]
        registry = ToolRegistry()
        [config] = load_config_from({"web": {"url": server.url, "confirm": "never"}})
        link = MCPServerLink(config, registry)
        link.start()
        try:
            await link.wait_listed(10)
            assert link.available, link.last_error
            assert await link.call("echo", {"text": "hi"}) == "echo: hi"
            assert registry.get("web_echo") is not None
        finally:
            await link.stop()
    methods = server.methods()
    assert methods[0] == "server/discover"  # auto mode probes the 2026 era first
    sessions = [r.headers.get("mcp-session-id") for r in server.requests if r.method]
    parley = {"name": "parley", "version": version("parley")}
    if era == "modern":
        assert link.protocol_version == "2026-07-28"
        assert "initialize" not in methods and not any(sessions)  # stateless
        calls = [r for r in server.requests if r.method == "tools/call"]
        assert calls and calls[0].headers["mcp-protocol-version"] == "2026-07-28"
        assert calls[0].params["_meta"][CLIENT_INFO_META_KEY] == parley
    else:
        assert link.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        assert methods[1] == "initialize"  # refused probe, then the handshake
        assert all(sessions[2:])  # every request after initialize is in the session
        assert server.requests[1].params["clientInfo"] == parley


async def test_a_handshake_only_client_is_refused_by_a_2026_server() -> None:
    with StreamableHTTPMCPServer(era="modern") as server:
        [config] = load_config_from({"web": {"url": server.url}})
        link = MCPServerLink(config, ToolRegistry(), mode="legacy", initial_backoff=30)
        link.start()
        try:
            await link.wait_listed(10)
            assert not link.available and link.last_error
        finally:
            await link.stop()
    assert server.methods()[0] == "initialize"


@pytest.mark.parametrize("era", ["modern", "legacy"])
async def test_a_servers_form_goes_to_the_asker_and_the_answer_back(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, era: str
) -> None:
    with StreamableHTTPMCPServer(era=era) as server:  # type: ignore[arg-type]
        app = await make_mcp_app({"web": {"url": server.url, "confirm": "never"}})
        llm.script(tool_call_reply(("web_book_table", {})), text_reply("Booked."))
        values: dict[str, str | int | float | bool] = {"guests": 4, "outside": True}
        values["time"] = "20:30"
        surface = RecordingSurface(input_answers=[InputAnswer(InputAction.ACCEPT, values)])

        outcome = await app.engine.handle(message("book a table"), surface)

        [(asker, question)] = surface.asked
        assert asker == ALICE and question.source == "web"
        assert question.asked_by == "MCP server {name}"
        assert question.message == "Book a table" and not question.url
        guests, outside, time, note = question.fields
        assert (guests.kind, guests.required, guests.description) == (
            InputFieldKind.INTEGER,
            True,
            "How many people",
        )
        assert (outside.kind, outside.label) == (InputFieldKind.BOOLEAN, "Outside")
        assert time.kind is InputFieldKind.CHOICE
        assert [choice.label for choice in time.choices] == ["19:00", "20:30"]
        assert (note.kind, note.required) == (InputFieldKind.TEXT, False)
        assert outcome.tool_results[0].content == ("booked: 4 at 20:30, outside=True, note=None")


@pytest.mark.parametrize("era", ["modern", "legacy"])
async def test_a_servers_link_shows_its_domain_and_a_decline_goes_back(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, era: str
) -> None:
    with StreamableHTTPMCPServer(era=era) as server:  # type: ignore[arg-type]
        app = await make_mcp_app({"web": {"url": server.url, "confirm": "never"}})
        llm.script(tool_call_reply(("web_sign_in", {})), text_reply("You declined."))
        surface = RecordingSurface(input_answers=[InputAnswer(InputAction.DECLINE)])

        outcome = await app.engine.handle(message("sign me in"), surface)

        [(_, question)] = surface.asked
        assert question.url.startswith("https://auth.example.com/")
        assert question.domain == "auth.example.com" and not question.fields
        assert outcome.tool_results[0].content == "sign in: decline"
        if era == "modern":
            assert server.states == ["opaque-state-1"]  # echoed unchanged


async def test_a_question_with_nobody_to_ask_is_cancelled(
    http_mcp: StreamableHTTPMCPServer,
) -> None:
    [config] = load_config_from({"web": {"url": http_mcp.url}})
    link = MCPServerLink(config, ToolRegistry())
    link.start()
    try:
        await link.wait_listed(10)
        assert await link.call("book_table", {}) == "not booked: cancel"
    finally:
        await link.stop()


async def test_structured_content_reaches_the_model_with_the_text_and_bounded(
    llm: ScriptedOpenAIServer, make_mcp_app: McpAppFactory, http_mcp: StreamableHTTPMCPServer
) -> None:
    app = await make_mcp_app({"web": {"url": http_mcp.url, "confirm": "never"}})
    llm.script(
        tool_call_reply(("web_forecast", {"days": 2}), ("web_forecast", {"days": 400})),
        text_reply("Mild."),
    )
    outcome = await app.engine.handle(message("forecast"), RecordingSurface())
    short, long = outcome.tool_results
    text, _, structured = short.content.partition("\n\nStructured content (JSON):\n")
    assert text == "Mild for 2 days."
    assert json.loads(structured)["days"][1] == {"day": 1, "high": 21, "note": "x" * 50}
    assert long.content.startswith("Mild for 400 days.") and "more characters]" in long.content
    assert len(long.content) < MAX_STRUCTURED_CHARS + 200
    sent = [m["content"] for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert sent == [short.content, long.content]


TOKEN = "s3cret-mcp-token-4711"


async def test_a_bearer_token_and_headers_from_the_environment_and_never_logged(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    environ = {"WEB_MCP_TOKEN": TOKEN, "WEB_TENANT": "tenant-blue-42"}
    with StreamableHTTPMCPServer(token=TOKEN) as server:
        entry = {
            "url": server.url,
            "bearer_token_env": "WEB_MCP_TOKEN",
            "headers": {"X-Tenant": "${WEB_TENANT}"},
        }
        path = tmp_path / "mcp.json"
        path.write_text(json.dumps({"servers": {"web": entry}}), "utf-8")
        [good] = load_config(path, environ)
        [wrong] = load_config(path, {**environ, "WEB_MCP_TOKEN": "wrong-token-0815"})
        assert TOKEN not in repr(good)
        links = [MCPServerLink(c, ToolRegistry(), initial_backoff=30) for c in (good, wrong)]
        for link in links:
            link.start()
        try:
            for link in links:
                await link.wait_listed(10)
            assert links[0].available and await links[0].call("echo", {"text": "x"}) == "echo: x"
            assert not links[1].available and links[1].last_error  # refused: 401
        finally:
            for link in links:
                await link.stop()
    seen = [r.headers for r in server.requests]
    assert all(h.get("x-tenant") == "tenant-blue-42" for h in seen)
    assert any(h.get("authorization") == f"Bearer {TOKEN}" for h in seen)
    logged = caplog.text + "".join(str(r.exc_info) for r in caplog.records)
    assert TOKEN not in logged and "wrong-token-0815" not in logged
    assert good.secrets()[TOKEN] == "MCP server web token"


def test_a_missing_environment_variable_is_named(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    entry = {"url": "http://127.0.0.1:9/mcp", "bearer_token_env": "NOPE_TOKEN"}
    path.write_text(json.dumps({"servers": {"web": entry}}), "utf-8")
    with pytest.raises(ConfigError, match="NOPE_TOKEN, which is not set"):
        load_config(path, {})
    entry = {"url": "http://127.0.0.1:9/mcp", "headers": {"X-Key": "${NOPE_KEY}"}}
    path.write_text(json.dumps({"servers": {"web": entry}}), "utf-8")
    with pytest.raises(ConfigError, match=r'header "X-Key" names .* NOPE_KEY'):
        load_config(path, {})


def test_the_logs_redact_mcp_header_secrets(tmp_path: Path) -> None:
    from bot.builders import log_secrets
    from bot.config import Settings
    from bot.ops.redact import SecretFilter

    path = tmp_path / "mcp.json"
    entry = {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": f"Bearer {TOKEN}"}}
    path.write_text(json.dumps({"servers": {"web": entry}}), "utf-8")
    settings = Settings.load(env_file=None, mcp={"config": str(path)})
    record = logging.LogRecord("x", logging.ERROR, "", 0, "sent %s", (TOKEN,), None)
    SecretFilter(log_secrets(settings)).filter(record)
    assert TOKEN not in record.getMessage() and "MCP server web" in record.getMessage()


async def test_over_the_tool_budget_the_model_is_offered_builtins_and_the_most_relevant(
    llm: ScriptedOpenAIServer,
    make_app: AppFactory,
    http_mcp: StreamableHTTPMCPServer,
    tmp_path: Path,
) -> None:
    config = tmp_path / "mcp.json"
    servers = {"web": {"url": http_mcp.url, "confirm": "never"}}
    config.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    [clock] = [t for t in ALL_TOOLS if t.name == "get_current_time"]
    app = await make_app(
        [clock],
        llm={"model": "m"},
        bot={"max_offered_tools": 3},
        mcp={"config": str(config)},
        admin={"default_tools_dm": "all,mcp:web"},
    )
    assert len([t for t in app.tools if t.source == "mcp:web"]) > 5
    llm.script(text_reply("5"))

    await app.engine.handle(message("please add two integers: 2 and 3"), RecordingSurface())

    tools = offered(llm.requests[0])
    assert len(tools) == 3 and {"get_current_time", "web_add"} <= set(tools)


@pytest.mark.parametrize("refusal", [None, METHOD_NOT_FOUND, INTERNAL_ERROR])
async def test_a_2026_server_that_refuses_subscriptions_is_listed_on_a_timer_not_restarted(
    refusal: int | None,
) -> None:
    with StreamableHTTPMCPServer(era="modern", listen_refusal=refusal) as server:
        registry = ToolRegistry()
        [config] = load_config_from({"web": {"url": server.url, "confirm": "never"}})
        link = MCPServerLink(config, registry, ping_interval=0.1)
        link.start()
        try:
            await link.wait_listed(10)
            await link.wait_settled(10)
            assert link.available and link.subscribed is (refusal is None)
            assert await link.call("grow", {}) == "grown"
            # Announced by the subscription, or found by the listing on a timer.
            await wait_until(lambda: registry.get("web_late_tool") is not None)
            if refusal is not None:  # listed again and again, never restarted
                listed = link.listings
                await wait_until(lambda: link.listings >= listed + 2)
            assert await link.call("echo", {"text": "still"}) == "echo: still"
            assert (link.restarts, link.failures_after_listing) == (0, 0)
        finally:
            await link.stop()
    assert server.methods().count("subscriptions/listen") == 1  # asked once, never again
    assert server.methods().count("server/discover") == 1  # never reconnected


async def test_an_unanswered_subscription_falls_back_to_listing_on_a_timer() -> None:
    with StreamableHTTPMCPServer(era="modern", listen_unanswered=True) as server:
        registry = ToolRegistry()
        entry = {"url": server.url, "confirm": "never", "call_timeout": 0.5}
        [config] = load_config_from({"web": entry})
        link = MCPServerLink(config, registry, ping_interval=0.1)
        link.start()
        try:
            await link.wait_listed(10)
            await link.wait_settled(10)
            assert link.available and not link.subscribed
            await wait_until(lambda: link.listings >= 3)
            assert await link.call("echo", {"text": "x"}) == "echo: x"
            assert (link.restarts, link.failures_after_listing) == (0, 0)
        finally:
            await link.stop()


async def test_the_official_time_server_without_subscriptions_stays_up() -> None:
    """mcp-server-time (PyPI) advertises `tools.listChanged: false` and has no
    `subscriptions/listen`: it is not subscribed to, and its tools keep working."""
    registry = ToolRegistry()
    [config] = load_config_from(
        {"time": {"command": sys.executable, "args": ["-m", "mcp_server_time"]}}
    )
    link = MCPServerLink(config, registry, ping_interval=0.1)
    link.start()
    try:
        await link.wait_listed(20)
        await link.wait_settled(10)
        assert link.available and link.protocol_version == "2026-07-28" and not link.subscribed
        await wait_until(lambda: link.listings >= 3)
        answer = json.loads(await link.call("get_current_time", {"timezone": "Asia/Shanghai"}))
        assert answer["timezone"] == "Asia/Shanghai"
        assert (link.restarts, link.failures_after_listing) == (0, 0)
    finally:
        await link.stop()


async def test_a_stdio_servers_stderr_goes_to_the_log_and_sdk_tracebacks_to_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    env = {"FAKE_MCP_STDERR": "fake banner 4711", "FAKE_MCP_STRAY_STDOUT": "1"}
    [config] = load_config_from({"fake": stdio_server(env=env)})
    link = MCPServerLink(config, ToolRegistry())
    MCPTools([], ToolRegistry())  # installs the one-line filter, as the app does
    link.start()
    try:
        await link.wait_listed(10)
        assert link.available
        await wait_until(lambda: "fake banner 4711" in link.stderr.lines)
    finally:
        await link.stop()
    [banner] = [r for r in caplog.records if "fake banner 4711" in r.getMessage()]
    assert banner.name == "tools.mcp.stderr" and banner.getMessage().startswith("MCP server fake")
    sdk = [r for r in caplog.records if r.name.split(".")[0] == "mcp"]
    [stray] = [r for r in sdk if "Failed to parse" in r.getMessage()]
    assert "not JSON-RPC" in stray.getMessage() or "ValidationError" in stray.getMessage()
    assert all(r.exc_info is None for r in sdk)


async def test_an_http_server_that_forgot_the_session_gets_a_new_one_and_the_call_again() -> None:
    with StreamableHTTPMCPServer(era="legacy") as server:
        [config] = load_config_from({"web": {"url": server.url, "confirm": "never"}})
        link = MCPServerLink(config, ToolRegistry(), mode="legacy")
        link.start()
        try:
            await link.wait_listed(10)
            assert await link.call("echo", {"text": "before"}) == "echo: before"
            server.forget_sessions()  # restarted: the SDK server answers 404 to the old one

            assert await link.call("echo", {"text": "after"}) == "echo: after"

            assert link.sessions_renewed == 1 and link.failures_after_listing == 0
            # A tool's own error that speaks of a session is no reason to call again.
            with pytest.raises(Exception, match="failed on purpose: session"):
                await link.call("fail", {"reason": "session"})
            assert link.sessions_renewed == 1
        finally:
            await link.stop()
    echoes = [r for r in server.requests if r.method == "tools/call"]
    old, new = echoes[0].headers["mcp-session-id"], echoes[-1].headers["mcp-session-id"]
    assert old != new and server.methods().count("initialize") == 2
    # Goodbye (DELETE) to the session in use at the stop, none to the forgotten one.
    [goodbye] = [r for r in server.requests if r.http_method == "DELETE"]
    assert goodbye.headers["mcp-session-id"] == new
    assert goodbye.headers["mcp-protocol-version"] == link.protocol_version
    assert len([r for r in echoes if r.params["arguments"] == {"text": "after"}]) == 2


async def test_a_frozen_stdio_server_is_restarted_without_waiting_for_the_listing_timer(
    llm: ScriptedOpenAIServer, make_app: AppFactory, tmp_path: Path
) -> None:
    config = tmp_path / "mcp.json"
    servers = {"fake": stdio_server(confirm="never", call_timeout=1)}
    config.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    app = await make_app(
        ALL_TOOLS,
        llm={"model": "m"},
        mcp={"config": str(config), "probe_timeout_seconds": 0.5},
        admin={"default_tools_dm": "all,mcp:fake"},
    )
    assert app.mcp is not None
    [link] = app.mcp.links
    llm.script(tool_call_reply(("fake_freeze", {})), text_reply("It hangs."))
    outcome = await app.engine.handle(message("freeze"), RecordingSurface())
    [frozen] = outcome.tool_results
    assert frozen.is_error and "timed out after 1 s" in frozen.content

    # The listing timer is 30 s away; the failed ping restarts it long before.
    await wait_until(lambda: link.restarts == 1 and link.available, seconds=20)
    assert "no answer to a ping within 0.5 s" in link.last_failure
    llm.script(tool_call_reply(("fake_add", {"a": 1, "b": 2})), text_reply("3"))
    outcome = await app.engine.handle(message("1+2"), RecordingSurface())
    assert json.loads(outcome.tool_results[0].content) == {"total": 3}


@pytest.mark.parametrize(("hard_cap", "finished"), [(30.0, True), (2.5, False)])
async def test_progress_is_shown_and_restarts_the_timeout_up_to_the_hard_cap(
    llm: ScriptedOpenAIServer,
    make_app: AppFactory,
    http_mcp: StreamableHTTPMCPServer,
    tmp_path: Path,
    hard_cap: float,
    finished: bool,
) -> None:
    config = tmp_path / "mcp.json"
    servers = {"web": {"url": http_mcp.url, "confirm": "never", "call_timeout": 2}}
    config.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    app = await make_app(
        ALL_TOOLS,
        llm={"model": "m"},
        mcp={"config": str(config), "call_hard_timeout_seconds": hard_cap},
        admin={"default_tools_dm": "all,mcp:web"},
    )
    # 6 steps of 0.5 s: 3 s in all, more than the 2 s timeout, with progress after each.
    steps = {"steps": 6, "pause": 0.5}
    llm.script(tool_call_reply(("web_slow_steps", steps)), text_reply("Done."))
    surface = RecordingSurface()

    outcome = await app.engine.handle(message("go slowly"), surface)

    [result] = outcome.tool_results
    if finished:  # each report restarted the 2 s timeout
        assert (result.content, result.is_error) == ("6 steps done", False)
    else:  # ... but never past the hard cap
        assert result.is_error and "timed out" in result.content
    shown = [line for call, line in surface.progressed if call.name == "web_slow_steps"]
    assert shown[0] == "1 of 6: step 1 done"
    if finished:  # about one a second, and the last one always
        assert shown[-1] == "6 of 6: step 6 done" and len(shown) < 6
    calls = [r for r in http_mcp.requests if r.method == "tools/call"]
    assert "progressToken" in calls[-1].params["_meta"]  # every call asks for progress
