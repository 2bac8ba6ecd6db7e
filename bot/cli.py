"""The `parley` command: run, chat, migrate, tools, reminders."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import typer

from bot.app import Application, build_mcp
from bot.config import Settings
from bot.errors import ConfigError, ParleyError
from bot.logs import configure_logging
from bot.storage import migrate as migrate_database
from bot.toolkit import ToolRegistry

log = logging.getLogger("parley")

cli = typer.Typer(
    help="Parley: an LLM assistant with real tools for Slack, Telegram and the terminal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings(*, quiet: bool = False) -> Settings:
    settings = Settings.load()
    configure_logging(
        "WARNING" if quiet else settings.log.level,
        settings.log.format,
        secrets=settings.secrets(),
    )
    return settings


@cli.command()
def run() -> None:
    """Run the bot: every configured platform plus the web server (/healthz)."""
    settings = _settings()

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
def chat() -> None:
    """Chat with Parley in this terminal (same database and tools as the bot)."""
    from integrations.console import ConsoleMessenger, run_console

    settings = _settings(quiet=True)

    async def main() -> None:
        application = Application(settings, messengers=[ConsoleMessenger()])
        try:
            await application.start()
            await application.start_scheduler()
            await run_console(application.engine)
        finally:
            await application.aclose()

    _run(main)


@cli.command()
def migrate() -> None:
    """Bring the database (DATABASE_URL) to the newest schema."""
    settings = _settings()
    _run(lambda: migrate_database(settings.database.url))
    typer.echo("database is up to date")


tools_cli = typer.Typer(help="The tools the model can be offered.", add_completion=False)
cli.add_typer(tools_cli, name="tools")


@tools_cli.callback(invoke_without_command=True)
def tools(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print the schemas as JSON."),
) -> None:
    """List the tools (`parley tools` is `parley tools list`)."""
    if ctx.invoked_subcommand is None:
        list_tools(as_json)


@tools_cli.command("list")
def list_tools(
    as_json: bool = typer.Option(False, "--json", help="Print the schemas as JSON."),
) -> None:
    """Every tool: built-in ones and those of the MCP servers in PARLEY_MCP_CONFIG."""
    from tools import ALL_TOOLS

    settings = _settings(quiet=True)
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
    for item in registry:
        flag = " (asks the user to confirm)" if item.side_effect else ""
        typer.echo(
            f"{item.name}  [{item.source}]{flag}\n    {item.description.splitlines()[0]}\n"
            f"    parameters: {json.dumps(item.json_schema(), ensure_ascii=False)}"
        )


reminders_cli = typer.Typer(help="Reminders and follow-ups in the database.", no_args_is_help=True)
cli.add_typer(reminders_cli, name="reminders")


@reminders_cli.command("list")
def reminders_list(
    show_all: bool = typer.Option(False, "--all", help="Also delivered, cancelled, failed."),
) -> None:
    """Show pending reminders (soonest first): id, when (UTC), owner, kind, repeat, text."""
    settings = _settings(quiet=True)

    async def main() -> None:
        application = Application(settings, provider=_NoProvider())
        try:
            await application.start()
            infos = await application.scheduler.list_all(include_done=show_all)
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
def reminders_cancel(reminder_id: int) -> None:
    """Cancel a pending reminder by id."""
    settings = _settings(quiet=True)

    async def main() -> bool:
        application = Application(settings, provider=_NoProvider())
        try:
            await application.start()
            return await application.scheduler.cancel(None, reminder_id)
        finally:
            await application.aclose()

    if not _run(main):
        typer.echo(f"no pending reminder {reminder_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"reminder {reminder_id} cancelled")


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
