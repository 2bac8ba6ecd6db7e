"""The `parley` command: run, chat, migrate, doctor, tools, reminders.

Every command reads its settings from one `.env` file (`--env-file`, else PARLEY_ENV_FILE,
else `./.env` if there is one) plus the environment, and says on stderr which file and
which database it uses: run from the wrong folder, the line shows it at once. Relative
paths in the .env file are under its folder (bot/config/paths.py).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.errors import ConfigError, ParleyError

# The application (SQLAlchemy, the SDKs, the scheduler) is imported by the command that
# runs, not by `parley -h` or a typo: each command imports what it uses.
if TYPE_CHECKING:
    from bot.config import Settings
    from bot.llm.base import Provider
    from bot.toolkit import ToolRegistry

log = logging.getLogger("parley")

HELP = {"help_option_names": ["-h", "--help"]}
ENV_FILE_VARIABLE = "PARLEY_ENV_FILE"
# How long the doctor gives an MCP server that listed its tools to settle and answer again.
MCP_SETTLE_SECONDS = 5.0

cli = typer.Typer(
    help="Parley: an LLM assistant with real tools for Slack, Telegram and the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=HELP,
)


def _show_version(value: bool) -> None:
    if value:
        from bot.ops.observe import parley_version

        typer.echo(f"parley {parley_version()}")
        raise typer.Exit()


@cli.callback()
def options(
    ctx: typer.Context,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            envvar=ENV_FILE_VARIABLE,
            help="The .env file to read settings from (default: ./.env if it exists).",
            show_default=False,
        ),
    ] = None,
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Parley: an LLM assistant with real tools for Slack, Telegram and the terminal."""
    ctx.obj = env_file


def resolve_env_file(given: Path | None) -> Path | None:
    """The .env file a command reads: the one asked for (it must exist), else ./.env."""
    if given is not None:
        path = given.expanduser()
        if not path.is_file():
            raise ConfigError(
                f"--env-file/{ENV_FILE_VARIABLE}: {path} does not exist or is not a file"
            )
        return path.resolve()
    default = Path(".env")
    return default.resolve() if default.is_file() else None


def describe_sources(env_file: Path | None, database_url: str) -> str:
    """One line: which .env file and which database (password hidden) a command uses."""
    from sqlalchemy import make_url

    source = (
        f"settings from {env_file}"
        if env_file is not None
        else f"no .env file in {Path.cwd()} (environment only; see --env-file)"
    )
    try:
        url = make_url(database_url)
    except Exception:  # an invalid URL is reported by the command that opens it
        return f"{source}; database {database_url!r}"
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        path = Path(url.database).expanduser().resolve()
        state = "" if path.exists() else " (does not exist yet)"
        return f"{source}; database {path}{state}"
    return f"{source}; database {url.render_as_string(hide_password=True)}"


def _settings(ctx: typer.Context, *, quiet: bool = False, names: bool = True) -> Settings:
    """The settings; the first line on stderr says where they came from, the next ones
    name what looks like a setting but is not one (`names=False`: the caller shows them)."""
    from bot.builders import log_secrets, misnamed
    from bot.config import Settings
    from bot.ops.logs import configure_logging

    env_file = _env_file(ctx)
    settings = Settings.load(env_file=env_file)
    configure_logging(
        "WARNING" if quiet else settings.log.level,
        settings.log.format,
        secrets=log_secrets(settings),
    )
    sources = describe_sources(env_file, settings.database.url)
    problems = misnamed(settings, env_file) if names else []
    if quiet:
        typer.echo(f"parley: {sources}", err=True)
        for problem in problems:
            typer.echo(f"parley: warning: {problem}", err=True)
    else:  # a logging command says it in its log format (JSON lines stay JSON)
        log.info("%s", sources)
        for problem in problems:
            log.warning("%s", problem)
    return settings


def _env_file(ctx: typer.Context) -> Path | None:
    root = ctx.find_root()
    return resolve_env_file(root.obj if isinstance(root.obj, Path) else None)


@cli.command()
def run(ctx: typer.Context) -> None:
    """Run the bot: every configured platform plus the web server (/healthz)."""
    from bot.app import Application

    settings = _settings(ctx)

    async def main() -> None:
        application = Application(settings)
        try:
            await application.start()
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await application.serve(stop)
        finally:
            await application.aclose()

    _run(main)
    log.info("stopped")


@cli.command()
def chat(ctx: typer.Context) -> None:
    """Chat with Parley in this terminal (same database and tools as the bot)."""
    from bot.app import Application
    from integrations.console import ConsoleMessenger, run_console

    settings = _settings(ctx, quiet=True)

    async def main() -> None:
        application = Application(settings, messengers=[ConsoleMessenger()])
        try:
            await application.start()
            await application.start_scheduler()
            await run_console(application.desk)
        finally:
            await application.aclose()

    _run(main)


@cli.command()
def migrate(ctx: typer.Context) -> None:
    """Bring the database (DATABASE_URL) to the newest schema."""
    from bot.storage import migrate as migrate_database

    settings = _settings(ctx)
    _run(lambda: migrate_database(settings.database.url))
    typer.echo("database is up to date")


@cli.command()
def doctor(
    ctx: typer.Context,
    timeout: float = typer.Option(15.0, "--timeout", help="Seconds each check may take."),
) -> None:
    """Check the settings, the database, each platform's token, the model, SMTP and the
    MCP servers; one line each, exit code 1 if anything fails."""
    from bot.builders import build_mcp, build_platform_checks, build_provider, misnamed
    from bot.ops.doctor import (
        Check,
        build_checks,
        names_check,
        render,
        run_checks,
        secret_values,
    )
    from bot.toolkit import ToolRegistry

    settings = _settings(ctx, quiet=True, names=False)
    logging.getLogger().setLevel(logging.CRITICAL)  # the check lines say it all

    def provider_for(one_token: bool) -> Provider:
        return build_provider(_for_doctor(settings, one_token=one_token))

    llm = settings.llm
    key = llm.anthropic_api_key if llm.provider == "anthropic" else llm.api_key
    # Without a key there is no model to ask: the settings check names the missing one.
    model = provider_for if key is not None and key.get_secret_value() else None
    checks: list[Check] = [
        names_check(misnamed(settings, _env_file(ctx))),
        *build_checks(settings, model),
        *build_platform_checks(settings),
    ]

    async def main() -> list[Any]:
        registry = ToolRegistry([])
        mcp = build_mcp(settings, registry)
        try:
            if mcp is not None:
                await mcp.start()  # waits up to PARLEY_MCP_START_TIMEOUT for every server
                checks.extend(_mcp_check(link, registry, settings.mcp.config) for link in mcp.links)
            return await run_checks(checks, within=timeout)
        finally:
            if mcp is not None:
                await mcp.aclose()

    results = _run(main)
    secrets = secret_values(settings)
    for result in results:
        typer.echo(render(result, secrets))
    failed = sum(1 for result in results if not result.ok)
    if failed:
        typer.echo(f"{failed} of {len(results)} checks failed", err=True)
        raise typer.Exit(1)
    typer.echo(f"all {len(results)} checks passed")


def _for_doctor(settings: Settings, *, one_token: bool) -> Settings:
    """The settings of the doctor's model call: no retries, no thinking (a budget would not
    fit in one token), and a one-token answer when asked."""
    from bot.config import Settings

    update: dict[str, Any] = {"max_retries": 0, "thinking": "off"}
    if one_token:
        update["max_tokens"] = 1
    llm = settings.llm.model_copy(update=update)
    groups = {name: getattr(settings, name) for name in Settings.GROUPS}
    return Settings(**{**groups, "llm": llm})


def _mcp_check(link: Any, registry: ToolRegistry, config: str) -> Any:
    """An MCP server's check: it started, listed its tools, and keeps answering (`link` has
    tried by now). A server that lists its tools and then fails again and again is not ok."""
    from bot.ops.doctor import Check, CheckFailed

    name = link.config.name

    async def probe() -> str:
        if not link.available:
            raise CheckFailed(
                f"did not start or list its tools ({link.last_error or 'no answer'})",
                f"check [servers.{name}] in {config}.",
            )
        await link.wait_settled(MCP_SETTLE_SECONDS)
        problem = await link.answers(MCP_SETTLE_SECONDS)
        if problem or link.failures_after_listing:
            why = problem or link.last_error or link.last_failure or "none"
            raise CheckFailed(
                f"listed its tools, then failed: {link.failures_after_listing} restart(s) "
                f"after start, last error: {why}",
                f"see the server's own log; check [servers.{name}] in {config}.",
            )
        count = sum(1 for item in registry if item.source == f"mcp:{name}")
        how = "subscribed to changes" if link.subscribed else "listed again on a timer"
        return f"{count} tool(s) listed, {how}"

    return Check(f"MCP server {name}", probe)


tools_cli = typer.Typer(
    help="The tools the model can be offered.", add_completion=False, context_settings=HELP
)
cli.add_typer(tools_cli, name="tools")


@tools_cli.callback(invoke_without_command=True)
def tools(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the schemas as JSON."),
) -> None:
    """List the tools (`parley tools` is `parley tools list`)."""
    if ctx.invoked_subcommand is None:
        list_tools(ctx, as_json)


@tools_cli.command("list")
def list_tools(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the schemas as JSON."),
    for_message: str | None = typer.Option(
        None,
        "--for",
        help="Mark which tools a message like this would be offered "
        "(PARLEY_MAX_OFFERED_TOOLS; every tool counted as enabled).",
    ),
) -> None:
    """Every tool: built-in ones and those of the MCP servers in PARLEY_MCP_CONFIG."""
    from bot.builders import build_mcp
    from bot.toolkit import ToolRegistry
    from bot.turn.tool_choice import most_relevant
    from tools import ALL_TOOLS

    settings = _settings(ctx, quiet=True)
    registry = ToolRegistry(ALL_TOOLS)

    async def collect() -> None:
        mcp = build_mcp(settings, registry)
        if mcp is not None:
            try:
                await mcp.start()
            finally:
                await mcp.aclose()

    _run(collect)
    if as_json:
        listing = [
            {
                "name": t.name,
                "source": t.source,
                "side_effect": t.side_effect,
                "strict": t.strict,
                "description": t.description,
                "parameters": t.json_schema(),
            }
            for t in registry
        ]
        typer.echo(json.dumps(listing, indent=2, ensure_ascii=False))
        return
    offered: set[str] | None = None
    if for_message is not None:
        budget = settings.bot.max_offered_tools
        offered = {t.name for t in most_relevant(list(registry), for_message, budget)}
        typer.echo(
            f"{len(offered)} of {len(registry)} tools offered for {for_message!r} "
            f"(PARLEY_MAX_OFFERED_TOOLS={budget}):"
        )
    for item in registry:
        flag = " (asks the user to confirm)" if item.side_effect else ""
        if offered is not None:
            flag += " offered" if item.name in offered else " not offered"
        typer.echo(
            f"{item.name}  [{item.source}]{flag}\n    {item.description.splitlines()[0]}\n"
            f"    parameters: {json.dumps(item.json_schema(), ensure_ascii=False)}"
        )


reminders_cli = typer.Typer(
    help="Reminders and follow-ups in the database.", no_args_is_help=True, context_settings=HELP
)
cli.add_typer(reminders_cli, name="reminders")


@reminders_cli.command("list")
def reminders_list(
    ctx: typer.Context,
    show_all: bool = typer.Option(False, "--all", help="Also delivered, cancelled, failed."),
) -> None:
    """Show pending reminders (soonest first): id, when (UTC), owner, kind, repeat, text."""
    from bot.app import Application

    settings = _settings(ctx, quiet=True)

    async def main() -> None:
        application = Application(settings, provider=_NoProvider())
        try:
            await application.start()
            infos = await application.reminders.list_all(include_done=show_all)
        finally:
            await application.aclose()
        if not infos:
            typer.echo("no reminders" if show_all else "no pending reminders")
        for info in infos:
            repeat = info.cron if info.recurrence != "none" else "once"
            status = "" if info.status == "pending" else f"  [{info.status}]"
            error = f"  last error: {info.last_error}" if info.last_error else ""
            typer.echo(
                f"{info.id:>6}  {info.due_at:%Y-%m-%d %H:%M:%S}Z  {info.owner}  {info.kind}  "
                f"{repeat}  {info.text}{status}{error}"
            )

    _run(main)


@reminders_cli.command("cancel")
def reminders_cancel(ctx: typer.Context, reminder_id: int) -> None:
    """Cancel a pending reminder by id."""
    from bot.app import Application

    settings = _settings(ctx, quiet=True)

    async def main() -> bool:
        application = Application(settings, provider=_NoProvider())
        try:
            await application.start()
            cancelled = await application.reminders.cancel(None, reminder_id)
            # The same audit row as a cancel in the console, with who ran the command.
            await application.admin_store.audit(
                actor=f"cli:{_os_user()}",
                action="reminder.cancel",
                surface="cli",
                allowed=cancelled,
                details={"reminder_id": reminder_id}
                if cancelled
                else {"reminder_id": reminder_id, "reason": "not pending"},
            )
            return cancelled
        finally:
            await application.aclose()

    if not _run(main):
        typer.echo(f"no pending reminder {reminder_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"reminder {reminder_id} cancelled")


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry or $USER
        return "unknown"


class _NoProvider:
    """Commands that never ask the model need no API key."""

    model = "(none)"

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        raise ParleyError("this command does not talk to the model")

    async def aclose(self) -> None:
        return None


def _run(main: Callable[[], Awaitable[Any]]) -> Any:
    async def wrapper() -> Any:
        return await main()

    return asyncio.run(wrapper())


def main() -> None:
    """Entry point: one clear line for expected errors, never a traceback."""
    try:
        cli()
    except ConfigError as exc:
        print(f"parley: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ParleyError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except OSError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
