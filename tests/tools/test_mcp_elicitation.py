"""An MCP server's questions, end to end: server-everything's form (every kind of field
the restricted schema has) and its link tool (the request path and the -32042 error
path), served by the fake MCP server over HTTP, asked through `parley chat`'s terminal
and the engine, answered and checked before they go back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import mcp_types
import pytest

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
from integrations.console import run_console
from tests.apps import AppFactory
from tests.fakes.mcp_server import PREREQUISITE_URL, StreamableHTTPMCPServer
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tests.tools.real_mcp_servers import everything_stdio
from tools import ALL_TOOLS
from tools.mcp.elicitation import Unaskable, input_question

ALICE = UserRef("test", "alice", "Alice")
ME = UserRef("console", "me")
FORM = "web_trigger-elicitation-request"
LINK = "web_trigger-url-elicitation"
McpApp = Callable[..., Awaitable[Application]]


@pytest.fixture(params=["modern", "legacy"])
def server(request: pytest.FixtureRequest) -> Iterator[StreamableHTTPMCPServer]:
    """The fake of either protocol era (set up before the app, so stopped after it)."""
    with StreamableHTTPMCPServer(era=request.param) as server:
        yield server


@pytest.fixture
def mcp_app(make_app: AppFactory, tmp_path: Path) -> McpApp:
    async def make(url: str = "", name: str = "web", **entry: Any) -> Application:
        """An app with one MCP server: at `url`, or the config `entry` (stdio)."""
        config = tmp_path / "mcp.json"
        server = {"url": url, **entry} if url else dict(entry)
        servers = {"servers": {name: {**server, "confirm": "never"}}}
        config.write_text(json.dumps(servers), encoding="utf-8")
        return await make_app(
            ALL_TOOLS,
            llm={"model": "m"},
            mcp={"config": str(config)},
            admin={"default_tools_dm": f"all,mcp:{name}"},
        )

    return make


def typed_lines(*typed: str) -> Callable[[str], Awaitable[str]]:
    """A terminal that types `typed`, one line per prompt, then Ctrl-D."""
    lines = iter(typed)

    async def read(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return read


def tool_results(llm: ScriptedOpenAIServer) -> list[str]:
    return [m["content"] for r in llm.requests for m in r["messages"] if m["role"] == "tool"]


async def test_server_everythings_form_in_the_terminal_titles_toggles_defaults_and_limits(
    server: StreamableHTTPMCPServer, mcp_app: McpApp, llm: ScriptedOpenAIServer
) -> None:
    app = await mcp_app(server.url)
    llm.script(tool_call_reply((FORM, {})), text_reply("Thanks."))
    typed = typed_lines(
        "fill in my profile",
        "Ada Lovelace",  # name
        "y",  # agrees to the terms
        "",  # Enter keeps the first line's default
        "ada at example",  # not an email address: asked again
        "ada@example.com",
        "s",  # homepage skipped
        "1815-12-10",
        "500",  # over the maximum of 100: asked again
        "7",
        "",  # the number's default, 3.14
        "5",  # Ross
        "1 2",  # Guitar and Piano
        "3",  # Wonder Woman
        "",  # the fish already ticked (Tuna)
        "2",  # Dogs
        "r",  # Change: every field again, from the first
        "Ada King",
        "y",
        "",
        "ada@example.com",
        "s",
        "1815-12-10",
        "7",
        "",
        "5",
        "1 2",
        "3",
        "",
        "2",
        "",  # Enter sends the answers
    )
    out = io.StringIO()

    await run_console(app.desk, reader=typed, out=out, user=ME, color=False)

    shown = out.getvalue()
    assert "Not taken: Type an email address, like name@example.com." in shown
    assert "Not taken: The largest allowed is 100." in shown
    assert "1) Superman" in shown and "hero-1" not in shown  # titles, never the ids
    assert "1) [x] Tuna" in shown and "2) [ ] Salmon" in shown
    assert "4) Fish" in shown and "pet-4" not in shown  # enumNames
    assert "Default: It was a dark and stormy night." in shown
    assert "Titled Multiple Select Enum: Tuna\n  Legacy Titled Single Select Enum: Dogs" in shown
    assert tool_results(llm) == [
        "accepted: "
        + json.dumps(
            {
                "name": "Ada King",
                "check": True,
                "firstLine": "It was a dark and stormy night.",
                "email": "ada@example.com",
                "birthdate": "1815-12-10",
                "integer": 7,
                "number": 3.14,
                "untitledSingleSelectEnum": "Ross",
                "untitledMultipleSelectEnum": ["Guitar", "Piano"],
                "titledSingleSelectEnum": "hero-3",
                "titledMultipleSelectEnum": ["fish-1"],
                "legacyTitledEnum": "pet-2",
            },
            separators=(",", ":"),
        )
    ]


async def test_the_fake_refuses_an_answer_that_breaks_the_schema_as_the_sdk_does(
    server: StreamableHTTPMCPServer, mcp_app: McpApp, llm: ScriptedOpenAIServer
) -> None:
    """Why every limit is checked before the answer goes back: what the server refuses
    fails the whole call (here the answer skips Parley's checks)."""
    app = await mcp_app(server.url)
    llm.script(tool_call_reply((FORM, {})), text_reply("It failed."))
    bad = InputAnswer(InputAction.ACCEPT, {"name": "Ada", "integer": 500})
    surface = RecordingSurface(input_answers=[bad])

    outcome = await app.engine.handle(message("fill in my profile"), surface)

    [(_, question)] = surface.asked
    fields = {field.name: field for field in question.fields}
    multi = fields["titledMultipleSelectEnum"]
    assert multi.kind is InputFieldKind.MULTI_CHOICE and multi.default == ["fish-1"]
    assert [(c.value, c.title) for c in multi.choices][:1] == [("fish-1", "Tuna")]
    assert (fields["integer"].limits.minimum, fields["integer"].limits.maximum) == (1, 100)
    [result] = outcome.tool_results
    assert result.is_error and "accepted" not in result.content


def message(text: str) -> IncomingMessage:
    return IncomingMessage(chat=ChatRef("test", "dm-alice", ChatKind.DM), user=ALICE, text=text)


async def test_a_url_required_error_asks_the_link_and_retries_the_call_once(
    server: StreamableHTTPMCPServer, mcp_app: McpApp, llm: ScriptedOpenAIServer
) -> None:
    app = await mcp_app(server.url)
    arguments = {"url": "https://auth.example.com/connect", "errorPath": True}
    llm.script(tool_call_reply((LINK, arguments)), text_reply("Connected."))
    done = InputAnswer(InputAction.ACCEPT)
    surface = RecordingSurface(input_answers=[done, done])

    outcome = await app.engine.handle(message("connect my account"), surface)

    (_, prerequisite), (_, link) = surface.asked
    assert prerequisite.url == PREREQUISITE_URL and prerequisite.domain == "modelcontextprotocol.io"
    assert prerequisite.source == "web" and prerequisite.asked_by == "MCP server {name}"
    assert link.url == "https://auth.example.com/connect"  # the retried call's own question
    assert outcome.tool_results[0].content == "link: accept"


@pytest.mark.parametrize(
    ("action", "said"),
    [(InputAction.DECLINE, "the user declined"), (InputAction.CANCEL, "the user did not finish")],
)
async def test_a_url_required_error_declined_tells_the_model_and_is_not_retried(
    server: StreamableHTTPMCPServer,
    mcp_app: McpApp,
    llm: ScriptedOpenAIServer,
    action: InputAction,
    said: str,
) -> None:
    app = await mcp_app(server.url)
    arguments = {"url": "https://auth.example.com/connect", "errorPath": True}
    llm.script(tool_call_reply((LINK, arguments)), text_reply("Not connected."))
    surface = RecordingSurface(input_answers=[InputAnswer(action)])

    outcome = await app.engine.handle(message("connect my account"), surface)

    assert len(surface.asked) == 1
    [result] = outcome.tool_results
    assert result.is_error
    assert "requires the user to open a link first (to sign in or authorise it)" in result.content
    assert f"and {said} that; the tool did not run" in result.content


async def test_a_link_a_browser_would_open_elsewhere_is_never_shown(
    server: StreamableHTTPMCPServer,
    mcp_app: McpApp,
    llm: ScriptedOpenAIServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 28: `\\` is a path separator to a browser, so this opens evil.example."""
    app = await mcp_app(server.url)
    evil = "https://evil.example\\@accounts.google.com/login"
    llm.script(tool_call_reply((LINK, {"url": evil})), text_reply("It was refused."))
    out = io.StringIO()
    caplog.set_level(logging.WARNING, "bot.approvals.questions")

    await run_console(app.desk, reader=typed_lines("sign me in"), out=out, user=ME, color=False)

    assert "asks you to open a link" not in out.getvalue()
    assert "It leads to" not in out.getvalue()
    assert tool_results(llm) == ["link: decline"]
    assert (
        "a link from web was not shown to console:me and was declined: a backslash" in caplog.text
    )


async def test_a_url_required_error_with_an_unsafe_link_is_refused_unshown(
    server: StreamableHTTPMCPServer,
    mcp_app: McpApp,
    llm: ScriptedOpenAIServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = await mcp_app(server.url)
    arguments = {
        "url": "https://auth.example.com/connect",
        "errorPath": True,
        "prerequisite": "https://user:pw@auth.example.com/",
    }
    llm.script(tool_call_reply((LINK, arguments)), text_reply("Refused."))
    surface = RecordingSurface(input_answers=[InputAnswer(InputAction.ACCEPT)])

    outcome = await app.engine.handle(message("connect my account"), surface)

    assert surface.asked == []
    [result] = outcome.tool_results
    assert "its link was refused as unsafe to show" in result.content and result.is_error


def form(schema: dict[str, Any]) -> mcp_types.ElicitRequestFormParams:
    return mcp_types.ElicitRequestFormParams(message="m" * 5000, requested_schema=schema)


def test_a_servers_form_is_bounded_whatever_it_sends() -> None:
    many = {f"f{n}": {"type": "string"} for n in range(500)}
    question = input_question("web", form({"type": "object", "properties": many}))
    assert len(question.fields) == 20 and len(question.message) == 1000

    hostile = {
        "type": "object",
        "properties": {
            "pick": {"type": "string", "enum": [f"v{n}" for n in range(1000)]},
            "long": {"type": "string", "title": "t" * 5000, "maxLength": True, "minimum": "x"},
            "nested": {"type": "object", "properties": {}},
            "odd": {"oneOf": [{"const": 1, "title": "one"}, {"const": "x" * 600}, "junk"]},
            "num": {"type": "number", "minimum": float("inf"), "default": "3"},
            "multi": {"type": "array", "items": {"enum": ["a", "b"]}, "default": ["c"]},
        },
        "required": "all of them",
    }
    fields = {f.name: f for f in input_question("web", form(hostile)).fields}
    assert set(fields) == {"pick", "long", "num", "multi"}  # nothing askable in the others
    assert len(fields["pick"].choices) == 20
    assert len(fields["long"].label) == 100 and fields["long"].limits.max_length is None
    assert fields["num"].limits.minimum is None and fields["num"].default is None
    assert fields["multi"].kind is InputFieldKind.MULTI_CHOICE and fields["multi"].default is None
    assert not any(f.required for f in fields.values())


def test_a_required_field_that_cannot_be_asked_makes_the_form_unaskable() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "object"}}, "required": ["x"]}
    with pytest.raises(Unaskable):
        input_question("web", form(schema))
    many = {f"f{n}": {"type": "string"} for n in range(30)}
    with pytest.raises(Unaskable):
        input_question("web", form({"properties": many, "required": ["f25"]}))


async def test_a_link_with_non_latin_letters_names_its_host_in_punycode_with_a_warning(
    server: StreamableHTTPMCPServer, mcp_app: McpApp, llm: ScriptedOpenAIServer
) -> None:
    app = await mcp_app(server.url)
    idn = "https://b\u00fccher.example/login"
    llm.script(tool_call_reply((LINK, {"url": idn})), text_reply("Done."))
    out = io.StringIO()

    await run_console(app.desk, reader=typed_lines("sign me in", ""), out=out, user=ME, color=False)

    shown = out.getvalue()
    assert "https://xn--bcher-kva.example/login" in shown
    assert "It leads to xn--bcher-kva.example." in shown
    assert "Careful: xn--bcher-kva.example is how a name with non-Latin letters" in shown
    assert tool_results(llm) == ["link: accept"]  # Enter: Done


async def test_the_real_server_everythings_form_titles_toggles_defaults_and_limits(
    everything_package: Path, mcp_app: McpApp, llm: ScriptedOpenAIServer
) -> None:
    """The same form from the real server-everything (npm, over stdio): titles shown and
    values sent, toggles as a list, defaults kept, a broken limit asked again; the server
    takes the answer and says what it got."""
    app = await mcp_app(name="everything", **everything_stdio(everything_package))
    llm.script(
        tool_call_reply(("everything_trigger-elicitation-request", {})), text_reply("Thanks.")
    )
    typed = typed_lines(
        "fill in my profile",
        "Ada Lovelace",
        "y",
        "",  # the first line's default
        "ada@example.com",
        "https://ada.example.org/",
        "1815-12-10",
        "0",  # under the minimum of 1: asked again
        "7",
        "",  # the number's default, 3.14
        "5",  # Ross
        "1 3",  # Guitar and Violin
        "3",  # Wonder Woman
        "1 2",  # Tuna and Salmon
        "2",  # Dogs
        "",  # Enter sends the answers
    )
    out = io.StringIO()

    await run_console(app.desk, reader=typed, out=out, user=ME, color=False)

    shown = out.getvalue()
    assert "Not taken: The smallest allowed is 1." in shown, shown
    assert "3) Wonder Woman" in shown and "hero-3" not in shown
    [result] = tool_results(llm)
    assert "User provided the requested information" in result, result
    raw = json.loads(result.split("Raw result: ", 1)[1])
    assert raw["action"] == "accept"
    assert raw["content"] == {
        "name": "Ada Lovelace",
        "check": True,
        "firstLine": "It was a dark and stormy night.",
        "email": "ada@example.com",
        "homepage": "https://ada.example.org/",
        "birthdate": "1815-12-10",
        "integer": 7,
        "number": 3.14,
        "untitledSingleSelectEnum": "Ross",
        "untitledMultipleSelectEnum": ["Guitar", "Violin"],
        "titledSingleSelectEnum": "hero-3",
        "titledMultipleSelectEnum": ["fish-1", "fish-2"],
        "legacyTitledEnum": "pet-2",
    }
