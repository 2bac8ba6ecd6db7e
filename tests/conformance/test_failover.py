"""Several providers at once (PARLEY_PROVIDERS_FILE) and failover that resumes a turn:
real providers against the scripted OpenAI-compatible and Anthropic servers, the real
weather and email tools against their fakes, a real SQLite database."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from bot.answer import FAILOVER_NOTE
from bot.app import Application, build_provider
from bot.config import Settings
from bot.domain import ChatKind, ChatRef, IncomingMessage, UserRef
from bot.errors import ConfigError, ProviderBadRequest
from bot.llm.openai_compat import OpenAICompatProvider
from bot.llm.providers import FailoverProvider, load_providers_file
from tests.apps import AppFactory
from tests.fakes.anthropic_server import ScriptedAnthropicServer, anthropic_text_reply
from tests.fakes.open_meteo import OpenMeteoServer
from tests.fakes.openai_server import (
    ScriptedOpenAIServer,
    cut_reply,
    error_reply,
    text_reply,
    tool_call_reply,
)
from tests.fakes.smtp import SMTPServer
from tests.fakes.surface import RecordingSurface

ALICE = UserRef("test", "alice", "Alice")
TEAM = ChatRef("test", "team", ChatKind.GROUP)
MAIL = {"to": ["carol@example.com"], "subject": "Lunch", "body": "Noon at the usual place?"}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def providers_file(tmp_path: Path, primary_url: str, claude_url: str) -> Path:
    path = tmp_path / "providers.toml"
    path.write_text(
        f"""
[providers.primary]
base_url = "{primary_url}"
api_key_env = "PRIMARY_KEY"
model = "primary-model"
profile = "generic"

[providers.claude]
kind = "anthropic"
base_url = "{claude_url}"
api_key_env = "CLAUDE_KEY"
model = "claude-test"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIMARY_KEY", "sk-primary")
    monkeypatch.setenv("CLAUDE_KEY", "sk-ant-claude")


async def failover_app(
    make_app: AppFactory,
    tmp_path: Path,
    primary_url: str,
    claude: ScriptedAnthropicServer,
    llm: dict[str, Any] | None = None,
    **groups: Any,
) -> Application:
    path = providers_file(tmp_path, primary_url, claude.base_url)
    chosen = {"providers_file": str(path), "provider": "primary", "fallback": "claude"}
    return await make_app(llm={**chosen, **(llm or {})}, **groups)


def failovers(app: Application) -> str:
    return next(
        (
            line
            for line in app.metrics.exposition().decode().splitlines()
            if line.startswith("parley_provider_failover_total{")
        ),
        "",
    )


def tool_results(request: dict[str, Any]) -> list[str]:
    return [
        block["content"]
        for message in request["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "tool_result"
    ]


async def test_primary_down_from_the_start_the_fallback_answers(
    make_app: AppFactory, tmp_path: Path, claude: ScriptedAnthropicServer, keys: None
) -> None:
    app = await failover_app(make_app, tmp_path, closed_port_url(), claude)
    assert isinstance(app.provider, FailoverProvider)
    claude.script(anthropic_text_reply("Hello from Claude."))
    surface = RecordingSurface()
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), surface)

    assert outcome.error == "" and outcome.text == f"{FAILOVER_NOTE}\n\nHello from Claude."
    assert surface.failures == []
    [request] = claude.requests
    assert request["model"] == "claude-test"
    assert failovers(app) == 'parley_provider_failover_total{from="primary",to="claude"} 1.0'


async def test_primary_failing_after_a_weather_round_resumes_without_calling_it_again(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    open_meteo: OpenMeteoServer,
    keys: None,
) -> None:
    weather = {"geocoding_url": open_meteo.geocoding_url, "forecast_url": open_meteo.forecast_url}
    app = await failover_app(make_app, tmp_path, llm.base_url, claude, weather=weather)
    llm.script(
        tool_call_reply(("get_weather", {"place": "Beijing"}), reasoning="primary's own thoughts"),
        error_reply(503, message="overloaded"),
    )
    claude.script(anthropic_text_reply("It is mild in Beijing."))
    surface = RecordingSurface()
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "weather in Beijing?"), surface)

    assert outcome.error == "" and outcome.text.endswith("It is mild in Beijing.")
    assert FAILOVER_NOTE in outcome.text
    forecasts = [path for path, _ in open_meteo.requests if path.endswith("/forecast")]
    assert len(forecasts) == 1  # the weather service was called once
    assert len(llm.requests) == 2  # the round, then the call that failed
    # Claude got the conversation so far in its own format: the round and its result.
    [request] = claude.requests
    [result] = tool_results(request)
    assert "Beijing" in str(result) and "failed" not in str(result)
    assert claude.rejected == []
    assert "primary's own thoughts" not in str(request)  # no reasoning crosses vendors
    # The next turn starts on the fallback while the primary rests, and its history holds.
    claude.script(anthropic_text_reply("Still mild."))
    again = await app.engine.handle(IncomingMessage(TEAM, ALICE, "and now?"), RecordingSurface())
    assert again.text.endswith("Still mild.") and claude.rejected == []
    assert len(llm.requests) == 2


async def test_primary_failing_after_an_approved_email_sends_one_email_and_asks_once(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    smtp_server: SMTPServer,
    keys: None,
) -> None:
    email = {
        "host": smtp_server.host,
        "port": smtp_server.port,
        "tls": "none",
        "sender": "parley@bot.example.com",
        "allowlist": "@example.com",
        "timeout_seconds": 2,
    }
    app = await failover_app(make_app, tmp_path, llm.base_url, claude, email=email)
    llm.script(tool_call_reply(("send_email", MAIL)), error_reply(502, message="bad gateway"))
    claude.script(anthropic_text_reply("Sent to Carol."))
    surface = RecordingSurface(confirm_answer=True)
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "mail carol"), surface)

    assert outcome.error == "" and outcome.text.endswith("Sent to Carol.")
    assert len(smtp_server.messages) == 1  # one email
    assert len(surface.confirmations) == 1  # one question
    [request] = claude.requests
    assert len(tool_results(request)) == 1 and claude.rejected == []


async def test_a_bad_request_does_not_fail_over(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    keys: None,
) -> None:
    app = await failover_app(make_app, tmp_path, llm.base_url, claude)
    llm.script(error_reply(400, message="messages[0] is invalid"))
    surface = RecordingSurface()
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), surface)

    assert outcome.error == ProviderBadRequest.user_message
    assert claude.requests == [] and failovers(app) == ""


async def test_without_a_providers_file_the_old_settings_work(
    make_app: AppFactory, llm: ScriptedOpenAIServer
) -> None:
    app = await make_app()
    assert isinstance(app.provider, OpenAICompatProvider)
    llm.script(text_reply("As before."))
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), RecordingSurface())
    assert outcome.text == "As before." and FAILOVER_NOTE not in outcome.text


def test_provider_names_are_checked(tmp_path: Path, keys: None) -> None:
    with pytest.raises(ConfigError, match="PARLEY_PROVIDER"):
        Settings.load(env_file=None, llm={"provider": "qwen"})
    path = providers_file(tmp_path, "https://api.deepseek.com/v1", "https://api.anthropic.com")
    settings = Settings.load(
        env_file=None,
        llm={"providers_file": str(path), "provider": "primary", "fallback": "nobody"},
    )
    with pytest.raises(ConfigError, match="'nobody'"):
        build_provider(settings)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[providers.x]\nbase_url = 'https://a'\nmodel = 'm'", "`api_key_env` is required"),
        (
            "[providers.x]\nbase_url='https://a'\napi_key_env='K'\nmodel='m'\nkind='gemini'",
            "`kind` must be openai or anthropic",
        ),
        (
            "[providers.x]\nbase_url='ftp://a'\napi_key_env='K'\nmodel='m'",
            "must start with http",
        ),
        ("[providers.x]\nbase_url='https://a'\napi_key_env='K'\nmodel='m'\nkey='s'", "unknown"),
        ("not toml at all [", "not valid TOML"),
        ("[other]\n", "no [providers.<name>] table"),
    ],
)
def test_a_broken_providers_file_names_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "providers.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace(".", r"\.")):
        load_providers_file(path)


async def test_the_doctor_checks_every_provider(
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    keys: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.doctor import build_checks, run_checks

    path = providers_file(tmp_path, llm.base_url, claude.base_url)
    llm.script(text_reply("OK"))
    claude.script(anthropic_text_reply("OK"))
    settings = Settings.load(
        env_file=None,
        llm={
            "providers_file": str(path),
            "provider": "primary",
            "fallback": "claude",
            "api_key": "sk-single-provider",
        },
        database={"url": f"sqlite:///{tmp_path / 'doctor.db'}"},
    )
    results = {r.name: r for r in await run_checks(build_checks(settings, None), within=10)}
    assert results["model primary"].ok and "primary-model" in results["model primary"].detail
    assert results["model claude"].ok and "claude-test" in results["model claude"].detail
    assert "default primary, fallback claude" in results["settings"].detail
    assert "OPENAI_API_KEY set but not used for routing" in results["settings"].detail

    # A provider whose key is missing, and one that is down: each named on its own line.
    monkeypatch.delenv("CLAUDE_KEY")
    results = {r.name: r for r in await run_checks(build_checks(settings, None), within=10)}
    assert not results["settings"].ok and "CLAUDE_KEY is not set" in results["settings"].detail
    monkeypatch.setenv("CLAUDE_KEY", "sk-ant-claude")
    down = providers_file(tmp_path, closed_port_url(), claude.base_url)
    claude.script(anthropic_text_reply("OK"))
    settings = Settings.load(env_file=None, llm={"providers_file": str(down), "provider": "claude"})
    results = {r.name: r for r in await run_checks(build_checks(settings, None), within=10)}
    assert not results["model primary"].ok and "127.0.0.1" in results["model primary"].detail
    assert results["model claude"].ok


async def test_a_channel_can_name_its_provider(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    keys: None,
) -> None:
    """A channel whose model admins set to `@claude` (or `@claude:<model>`) is answered
    by that provider of the file, the chain behind it; an unknown name falls back to the
    default provider."""
    app = await failover_app(make_app, tmp_path, llm.base_url, claude)
    channel_id = await app.store.channel_id(TEAM)

    async def ask(model: str) -> str:
        await app.admin_store.set_channel_settings(
            channel_id, system_prompt=None, model=model, limits={}
        )
        outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), RecordingSurface())
        return outcome.text

    claude.script(anthropic_text_reply("Claude here."), anthropic_text_reply("Opus here."))
    assert await ask("@claude") == "Claude here."
    assert claude.requests[-1]["model"] == "claude-test" and llm.requests == []
    assert await ask("@claude:claude-opus-test") == "Opus here."
    assert claude.requests[-1]["model"] == "claude-opus-test"
    llm.script(text_reply("Default here."))
    assert await ask("@nobody") == "Default here."
    assert llm.requests[-1]["model"] == "primary-model"
    assert failovers(app) == ""  # a chosen provider is not a failover


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param(lambda: cut_reply(""), id="cut-before-any-text"),
        pytest.param(lambda: text_reply("", finish_reason="network_error"), id="failed-finish"),
    ],
)
async def test_a_stream_broken_before_any_text_is_asked_again_then_fails_over(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    keys: None,
    broken: Any,
) -> None:
    """A cut stream, or a failure the vendor calls transient, before any text reached the
    user: the primary is asked once more (its own retry), then the fallback answers."""
    app = await failover_app(make_app, tmp_path, llm.base_url, claude)
    llm.script(broken(), broken())
    claude.script(anthropic_text_reply("Claude finished it."))
    surface = RecordingSurface()
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), surface)

    assert outcome.error == "" and outcome.text == f"{FAILOVER_NOTE}\n\nClaude finished it."
    assert len(llm.requests) == 2 and len(claude.requests) == 1
    assert failovers(app) == 'parley_provider_failover_total{from="primary",to="claude"} 1.0'


async def test_a_stream_cut_once_is_answered_by_the_primary_asked_again(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    keys: None,
) -> None:
    app = await failover_app(make_app, tmp_path, llm.base_url, claude)
    llm.script(cut_reply(""), text_reply("Second try worked."))
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), RecordingSurface())

    assert outcome.text == "Second try worked." and len(llm.requests) == 2
    assert claude.requests == [] and failovers(app) == ""


async def test_a_stream_cut_after_text_was_shown_does_not_fail_over(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    keys: None,
) -> None:
    """The fallback would begin its answer afresh under text already on screen: the user
    is told the answer stopped, as with a single provider, and nothing else is asked."""
    app = await failover_app(make_app, tmp_path, llm.base_url, claude)
    llm.script(cut_reply("The first half of an answ"))
    surface = RecordingSurface()
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), surface)

    assert outcome.text.startswith("The first half of an answ")
    assert outcome.text != "The first half of an answ"  # the user is told it stopped
    assert FAILOVER_NOTE not in outcome.text
    assert len(llm.requests) == 1 and claude.requests == [] and failovers(app) == ""


async def test_the_cooldown_of_a_failed_provider_is_a_setting(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    claude: ScriptedAnthropicServer,
    keys: None,
) -> None:
    """PARLEY_FAILOVER_COOLDOWN=0: the primary that failed leads the very next call again
    (with the default 60 s it rests: see the weather case above)."""
    app = await failover_app(
        make_app, tmp_path, llm.base_url, claude, llm={"failover_cooldown_seconds": 0}
    )
    llm.script(error_reply(503, message="overloaded"), text_reply("Back again."))
    claude.script(anthropic_text_reply("Claude here."))
    first = await app.engine.handle(IncomingMessage(TEAM, ALICE, "hi"), RecordingSurface())
    second = await app.engine.handle(IncomingMessage(TEAM, ALICE, "again"), RecordingSurface())

    assert first.text.endswith("Claude here.") and second.text == "Back again."
    assert len(llm.requests) == 2 and len(claude.requests) == 1


def test_the_cooldown_is_bounded() -> None:
    assert Settings.load(env_file=None).llm.failover_cooldown_seconds == 60.0
    with pytest.raises(ConfigError, match="PARLEY_FAILOVER_COOLDOWN"):
        Settings.load(env_file=None, llm={"failover_cooldown_seconds": 86400})


async def test_reasoning_state_stays_with_the_provider_that_wrote_it(
    make_app: AppFactory,
    tmp_path: Path,
    llm: ScriptedOpenAIServer,
    open_meteo: OpenMeteoServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two accounts of one vendor (the same profile): the reasoning of the first one's tool
    round goes back to it, never to the second when it takes over."""
    monkeypatch.setenv("FIRST_KEY", "sk-first")
    monkeypatch.setenv("SECOND_KEY", "sk-second")
    path = tmp_path / "providers.toml"
    path.write_text(
        "".join(
            f'[providers.{name}]\nbase_url = "{llm.base_url}"\napi_key_env = "{name.upper()}_KEY"\n'
            f'model = "{name}-model"\nprofile = "deepseek"\n\n'
            for name in ("first", "second")
        ),
        encoding="utf-8",
    )
    weather = {"geocoding_url": open_meteo.geocoding_url, "forecast_url": open_meteo.forecast_url}
    app = await make_app(
        llm={"providers_file": str(path), "provider": "first", "fallback": "second"},
        weather=weather,
    )
    llm.refuse_as("deepseek")
    thoughts = "first account's own thoughts"
    round_ = tool_call_reply(("get_weather", {"place": "Beijing"}), reasoning=thoughts)

    def round_message(request: dict[str, Any]) -> dict[str, Any]:
        return next(m for m in request["messages"] if m.get("tool_calls"))

    # The first account finishes the loop itself: its reasoning comes back to it.
    llm.script(round_, text_reply("Mild."))
    await app.engine.handle(IncomingMessage(TEAM, ALICE, "weather?"), RecordingSurface())
    assert round_message(llm.requests[-1])["reasoning_content"] == thoughts
    assert llm.requests[-1]["model"] == "first-model"

    # It fails after its round: the second account continues without it.
    llm.script(round_, error_reply(503, message="overloaded"), text_reply("Still mild."))
    outcome = await app.engine.handle(IncomingMessage(TEAM, ALICE, "and now?"), RecordingSurface())
    assert outcome.text.endswith("Still mild.") and llm.rejected == []
    taken_over = llm.requests[-1]
    assert taken_over["model"] == "second-model"
    # The round's reasoning is not sent; the field DeepSeek requires is there, empty.
    assert [m["reasoning_content"] for m in taken_over["messages"] if m.get("tool_calls")] == [
        "",
        "",
    ]
    assert thoughts not in str(taken_over)
