"""`parley doctor`: check a deployment before it goes live, one line per check.

Each check is a name and an async probe. A probe returns what it found ("team Acme as
@parley") or raises `CheckFailed` with what went wrong and how to fix it; any other
exception is a failure too, described by its type and text. `run_checks` runs them
concurrently, each within a timeout, and keeps their order. `render` writes one line per
result with every secret of the settings replaced by `***`, so a token that a server
echoes back in an error never reaches the terminal.

The checks here need only the core (settings, database, model, SMTP); the composition
root adds the platforms' and the MCP servers' checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosmtplib
from pydantic import SecretStr
from sqlalchemy import make_url

from bot.config import EmailSettings, Settings
from bot.domain import ChatMessage, Role
from bot.errors import (
    ConfigError,
    ContextTooLong,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from bot.llm.base import Provider

if TYPE_CHECKING:
    from bot.llm.providers import ProviderSpec
from bot.ops.mail import MailFailure, allowed, classify, tls_context
from bot.storage.database import to_async_url
from bot.storage.migrate import current_revision, head_revision


class CheckFailed(Exception):
    """A probe's verdict: `detail` says what is wrong, `fix` what to do about it."""

    def __init__(self, detail: str, fix: str = "") -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


Probe = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    probe: Probe


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def run_checks(checks: Sequence[Check], *, within: float) -> list[CheckResult]:
    """Every check's result, in the order given; a probe past `within` seconds fails."""

    async def one(check: Check) -> CheckResult:
        try:
            detail = await asyncio.wait_for(check.probe(), within)
        except CheckFailed as exc:
            return CheckResult(check.name, False, exc.detail, exc.fix)
        except TimeoutError:
            return CheckResult(
                check.name, False, f"no answer within {within:g} s", "is it reachable from here?"
            )
        except Exception as exc:  # an unexpected failure is a failed check, not a crash
            return CheckResult(check.name, False, f"{type(exc).__name__}: {exc}")
        return CheckResult(check.name, True, detail)

    return list(await asyncio.gather(*(one(check) for check in checks)))


def render(result: CheckResult, secrets: Iterable[str] = ()) -> str:
    """`ok    name: detail` or `FAIL  name: detail. Fix: ...`, secrets masked."""
    text = f"{result.name}: {result.detail}"
    if not result.ok and result.fix:
        text = f"{text.rstrip('.')}. Fix: {result.fix}"
    text = " ".join(text.split())  # one line, whatever a server put in its error text
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return f"{'ok  ' if result.ok else 'FAIL'}  {text}"


def secret_values(settings: Settings) -> list[str]:
    """Every secret value in the settings (long enough to be worth masking)."""
    found: list[str] = []
    for name in Settings.GROUPS:
        group = getattr(settings, name)
        for field in type(group).model_fields:
            value = getattr(group, field)
            if isinstance(value, SecretStr) and len(value.get_secret_value()) >= 4:
                found.append(value.get_secret_value())
    database = make_url(settings.database.url) if "://" in settings.database.url else None
    if database is not None and database.password:
        found.append(str(database.password))
    return found


# -- the core's checks -----------------------------------------------------------------


def names_check(problems: Sequence[str]) -> Check:
    """Names that look like settings but are not, and names set twice in `.env`
    (bot/config/names.py): each would leave a value other than the one meant in force."""

    async def probe() -> str:
        if problems:
            raise CheckFailed(
                "; ".join(problems), "correct or remove them (.env.example lists every setting)."
            )
        return "no unknown or repeated names"

    return Check("setting names", probe)


def settings_check(settings: Settings) -> Check:
    """What is configured, and the combinations that cannot work."""

    async def probe() -> str:
        llm = settings.llm
        key = llm.anthropic_api_key if llm.provider == "anthropic" else llm.api_key
        key_name = "ANTHROPIC_API_KEY" if llm.provider == "anthropic" else "OPENAI_API_KEY"
        routing = f"provider {llm.provider}, model {llm.model}"
        if llm.providers_file is not None:
            routing = _providers_summary(settings)
        elif key is None or not key.get_secret_value():
            raise CheckFailed(f"{key_name} is not set", f"put {key_name}=... in your .env file.")
        slack = settings.slack
        if slack.enabled and slack.app_token is None and slack.signing_secret is None:
            raise CheckFailed(
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor "
                "SLACK_SIGNING_SECRET (HTTP events) is",
                "set one of them from your Slack app's settings.",
            )
        email = settings.email
        if email.host and not email.sender:
            raise CheckFailed("SMTP_HOST is set but SMTP_FROM is not", "set SMTP_FROM.")
        platforms = [
            name
            for name, on in (
                ("slack", slack.enabled),
                ("telegram", settings.telegram.bot_token is not None),
            )
            if on
        ]
        for kind, target in settings.alerts.targets:
            if kind == "email" and not (email.host and allowed(target, email.allowed_recipients)):
                raise CheckFailed(
                    f"PARLEY_ALERT_TO names {target} but email cannot reach it",
                    "set SMTP_HOST and put the address on PARLEY_EMAIL_ALLOWLIST.",
                )
            if kind != "email" and kind not in platforms:
                raise CheckFailed(
                    f"PARLEY_ALERT_TO names {kind}:{target} but {kind} is not configured",
                    f"configure {kind} or remove the target.",
                )
        return (
            f"{routing}; "
            f"platforms: {', '.join(platforms) or 'none (parley chat only)'}; "
            f"email {'on' if email.host else 'off'}; "
            f"MCP {'from ' + settings.mcp.config if settings.mcp.config else 'off'}; "
            f"alerts to {len(settings.alerts.targets) or 'nobody'}"
        )

    return Check("settings", probe)


def database_check(url: str) -> Check:
    """The database answers and its schema is at the newest migration. Never creates it."""

    async def probe() -> str:
        async_url = to_async_url(url)
        shown = async_url.render_as_string(hide_password=True)
        if async_url.get_backend_name() == "sqlite":
            shown = _existing_sqlite_file(async_url.database or "")
        try:
            current = await current_revision(url)
        except Exception as exc:
            raise CheckFailed(
                f"cannot connect to {shown} ({type(exc).__name__}: {exc})",
                "check DATABASE_URL and that the database server is running.",
            ) from None
        head = head_revision(url)
        if current != head:
            raise CheckFailed(
                f"{shown} is at migration {current or 'none'}, the newest is {head}",
                "run `parley migrate`.",
            )
        return f"{shown} at migration {head} (newest)"

    return Check("database", probe)


def _existing_sqlite_file(database: str) -> str:
    # One stat in a command-line check: blocking for it is fine.
    path = Path(database).expanduser().resolve()
    if not path.is_file():
        raise CheckFailed(
            f"{path} does not exist",
            "run `parley migrate` to create it, or point DATABASE_URL (or --env-file) "
            "at the database you meant.",
        )
    return str(path)


def _providers_summary(settings: Settings) -> str:
    """The providers file in one line; a CheckFailed for a broken file or a missing key."""
    from bot.llm.providers import chain_names, load_providers_file, settings_for

    llm = settings.llm
    try:
        if llm.providers_file is None:
            raise ConfigError("PARLEY_PROVIDERS_FILE is not set")
        specs = load_providers_file(llm.providers_file)
        names = chain_names(llm, specs)
        for spec in specs.values():
            settings_for(spec, llm, os.environ)
    except ConfigError as exc:
        raise CheckFailed(str(exc), f"fix {llm.providers_file} or the variable it names.") from None
    unused = [
        name
        for name, value in (
            ("OPENAI_API_KEY", llm.api_key),
            ("ANTHROPIC_API_KEY", llm.anthropic_api_key),
        )
        if value is not None
    ]
    note = f" ({', '.join(unused)} set but not used for routing)" if unused else ""
    return (
        f"providers from {llm.providers_file}: {', '.join(sorted(specs))}; default "
        f"{names[0]}, fallback {', '.join(names[1:]) or 'none'}{note}"
    )


def provider_checks(settings: Settings) -> list[Check]:
    """One model check per provider of PARLEY_PROVIDERS_FILE (a broken file: the
    settings check says why, and there is nothing to ask)."""
    from bot.llm.providers import build_one, load_providers_file, settings_for

    llm = settings.llm
    if llm.providers_file is None:
        return []
    try:
        specs = load_providers_file(llm.providers_file)
    except ConfigError:
        return []
    checks = []
    for name, spec in specs.items():

        def provider_for(one_token: bool, spec: ProviderSpec = spec) -> Provider:
            update: dict[str, Any] = {"max_retries": 0, "thinking": "off"}
            if one_token:
                update["max_tokens"] = 1
            return build_one(
                settings_for(spec, llm.model_copy(update=update), os.environ), spec.name
            )

        checks.append(
            model_check(
                provider_for,
                base_url=spec.base_url,
                key_name=spec.api_key_env,
                url_name=f"base_url of [providers.{name}]",
                name=f"model {name}",
            )
        )
    return checks


def model_check(
    provider_for: Callable[[bool], Provider],
    *,
    base_url: str,
    key_name: str,
    url_name: str,
    name: str = "model",
) -> Check:
    """One short call to the model: the key, the endpoint and the model name all work.

    `provider_for(True)` is a provider limited to a one-token answer, `provider_for(False)`
    one without a limit: a model that refuses the limit (OpenAI's reasoning models want
    `max_completion_tokens`) is asked again the way the bot asks it."""

    async def ask(provider: Provider) -> str:
        try:
            async for _ in provider.stream([ChatMessage(Role.USER, "Reply with OK.")], []):
                pass
        finally:
            await provider.aclose()
        return provider.model

    async def probe() -> str:
        try:
            try:
                model = await ask(provider_for(True))
            except ProviderBadRequest as exc:
                if "max_tokens" not in str(exc) and "max_completion_tokens" not in str(exc):
                    raise
                model = await ask(provider_for(False))
        except ProviderAuthError as exc:
            raise CheckFailed(
                f"the key was refused ({exc})", f"check {key_name} (and its access to the model)."
            ) from None
        except (ProviderBadRequest, ContextTooLong) as exc:
            raise CheckFailed(
                f"the request was refused ({exc})", "check PARLEY_MODEL (is the name right?)."
            ) from None
        except ProviderRateLimited as exc:
            raise CheckFailed(f"rate limited ({exc})", "try again in a minute.") from None
        except ProviderUnavailable as exc:
            raise CheckFailed(
                str(exc) if base_url in str(exc) else f"cannot reach {base_url} ({exc})",
                f"check {url_name} and that the server is up.",
            ) from None
        except ProviderError as exc:
            raise CheckFailed(str(exc)) from None
        return f"{model} at {base_url} answered"

    return Check(name, probe)


def smtp_check(settings: EmailSettings) -> Check:
    """Connect to the SMTP server, start TLS as configured, and log in."""

    async def probe() -> str:
        where = f"{settings.host}:{settings.port or 'default port'}"
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            use_tls=settings.tls == "tls",
            start_tls=settings.tls == "starttls",
            tls_context=tls_context(settings),
            timeout=settings.timeout_seconds,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as exc:
            problem = classify(exc)
            if problem.kind is MailFailure.TLS:
                raise CheckFailed(
                    f"{where}: {problem.detail}",
                    "if a private certificate authority signed the server's certificate, set "
                    "PARLEY_SMTP_CA_FILE to its PEM file; check that SMTP_HOST is the name on "
                    "the certificate and that SMTP_TLS matches the port.",
                ) from None
            raise CheckFailed(
                f"cannot connect to {where} ({exc})", "check SMTP_HOST, SMTP_PORT and SMTP_TLS."
            ) from None
        try:
            if not settings.username:
                return f"{where} answered (no login configured)"
            password = settings.password.get_secret_value() if settings.password else ""
            try:
                await client.login(settings.username, password)
            except aiosmtplib.SMTPAuthenticationError as exc:
                raise CheckFailed(
                    f"{where} refused the login of {settings.username!r} "
                    f"({exc.code} {exc.message})",
                    "check SMTP_USERNAME and SMTP_PASSWORD.",
                ) from None
            except aiosmtplib.SMTPException as exc:
                raise CheckFailed(
                    f"{where} did not log in {settings.username!r} ({exc})",
                    "check SMTP_TLS (many servers offer AUTH only after STARTTLS).",
                ) from None
            return f"{where} accepted the login of {settings.username!r}"
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()

    return Check("email (SMTP)", probe)


def build_checks(
    settings: Settings, provider_for: Callable[[bool], Provider] | None
) -> list[Check]:
    """The core's checks for these settings (the model's only with a way to build one)."""
    checks = [settings_check(settings), database_check(settings.database.url)]
    if settings.llm.providers_file is not None:
        checks += provider_checks(settings)
    elif provider_for is not None:
        llm = settings.llm
        anthropic = llm.provider == "anthropic"
        checks.append(
            model_check(
                provider_for,
                base_url=llm.anthropic_base_url if anthropic else llm.base_url,
                key_name="ANTHROPIC_API_KEY" if anthropic else "OPENAI_API_KEY",
                url_name="PARLEY_ANTHROPIC_BASE_URL" if anthropic else "OPENAI_BASE_URL",
            )
        )
    if settings.email.host:
        checks.append(smtp_check(settings.email))
    return checks
