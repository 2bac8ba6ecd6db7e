"""The composition root: builds every object from `Settings`.

Only this module (and the CLI that calls it) imports `bot`, `integrations` and `tools`
together. There are no module-level singletons: tests build as many applications as
they like, each with its own database and provider.

Vendor SDKs and chat platforms are imported when settings ask for them, not before:
the Anthropic SDK, the MCP SDK, slack-bolt and python-telegram-bot together are about
half of the process's memory and seconds of start-up (docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from bot.approvals.gate import Approvals
from bot.approvals.questions import InputQuestions
from bot.builders import (
    build_mcp,
    build_platform_checks,
    build_platforms,
    build_provider,
    build_transcriber,
    vendor_name,
)
from bot.chat.desk import Desk
from bot.chat.languages import Languages
from bot.chat.observed import GroupContext
from bot.chat.platform import Platform, ResumesTurns
from bot.config import Settings
from bot.domain import ToolServices
from bot.llm.base import Provider
from bot.llm.providers import FailoverProvider
from bot.ops.activity import ActivityRecorder
from bot.ops.alerts import Alerts
from bot.ops.leader import LeaderLease, Leadership
from bot.ops.mail import SMTPMailer
from bot.ops.observe import METRICS_CONTENT_TYPE, Metrics, Observers
from bot.policy.admin import Administration
from bot.policy.limits import Limits
from bot.policy.tools import ChannelToolPolicy
from bot.reminders import ReminderBook, ReminderScheduler
from bot.storage import ConversationStore, Database, migrate
from bot.storage.activity import ActivityStore
from bot.storage.admin import AdminStore
from bot.storage.approvals import ApprovalStore
from bot.storage.budgets import BudgetStore
from bot.storage.emails import EmailLog
from bot.storage.erase import TraceEraser
from bot.storage.feedback import FeedbackStore
from bot.storage.languages import LanguageStore
from bot.storage.leases import LeaseStore
from bot.storage.memory import MemoryStore
from bot.storage.observed import ObservedStore
from bot.storage.prompts import PromptStore
from bot.storage.sessions import ConsoleSessionStore
from bot.storage.turns import StoredTurn, TurnStore
from bot.surface import Messenger, Surface
from bot.toolkit import Tool, ToolRegistry
from bot.turn.durable import ProcessLease, TurnRecovery, TurnTicket
from bot.turn.engine import Engine
from bot.turn.media import MediaReader
from bot.turn.summaries import Summariser
from bot.web import WebServer, create_web_app
from bot.web.clients import ClientResolver
from bot.web.limits import BodyLimit
from bot.web.ops import DrainingMiddleware, ops_routes
from bot.web.overview import Overview, PlatformState
from tools import ALL_TOOLS
from tools.weather import OpenMeteo

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 3600.0


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None and value.get_secret_value() else None


class Application:
    """Everything one Parley process runs, with an explicit start and stop."""

    def __init__(
        self,
        settings: Settings,
        *,
        provider: Provider | None = None,
        tools: Iterable[Tool] | None = None,
        messengers: Iterable[Messenger] = (),
    ) -> None:
        self.settings = settings
        self.provider = provider or build_provider(settings)
        self.database = Database.from_settings(settings.database)
        # Prometheus metrics in a registry of this application's own.
        self.metrics = Metrics()
        self.store = ConversationStore(self.database)
        self.tools = ToolRegistry(ALL_TOOLS if tools is None else tools)
        # MCP servers' tools join the same registry when `start()` connects to them.
        self.mcp = build_mcp(settings, self.tools)
        self.admin_store = AdminStore(self.database)
        self.policy = ChannelToolPolicy(self.admin_store, settings.admin)
        # This process's lease: its turns (and their budget reservations) are taken over
        # when it stops being renewed (bot/turn/durable.py).
        self.process_lease = ProcessLease(
            LeaseStore(self.database),
            ttl_seconds=settings.turns.lease_seconds,
            renew_seconds=settings.turns.lease_renew_seconds,
        )
        self.limits = Limits(
            BudgetStore(self.database),
            settings.limits,
            holder=self.process_lease.name,
            output_cap=settings.llm.max_tokens,
        )
        self.admin = Administration(
            self.admin_store,
            self.policy,
            self.tools,
            settings.admin,
            providers=self.provider.names if isinstance(self.provider, FailoverProvider) else (),
        )
        self.weather = OpenMeteo(
            geocoding_url=settings.weather.geocoding_url,
            forecast_url=settings.weather.forecast_url,
            timeout=settings.weather.timeout_seconds,
            cache_seconds=settings.weather.cache_seconds,
        )
        self.mailer = SMTPMailer(settings.email, EmailLog(self.database))
        # Built in dependency order, once. The reminder book comes early (the engine's
        # tools create reminders) and its clock last (a follow-up runs a turn of the engine,
        # and reminders go out through the platforms' messengers). One dependency still
        # points back up the order: the engine reports failures to the alerts, which go
        # out through those messengers, asked for when an alert is sent (`messenger_for`).
        self.alerts = Alerts(settings.alerts, self.messenger_for, self.mailer)
        self.activity_store = ActivityStore(self.database)
        self.activity = ActivityRecorder(
            self.activity_store,
            vendor=vendor_name(settings),
            keep_days=settings.ops.activity_keep_days,
        )
        observer = Observers(self.metrics, self.alerts, self.activity)
        self.languages = Languages(
            LanguageStore(self.database),
            settings.language.default,
            cache_seconds=settings.language.cache_seconds,
        )
        self.reminders = ReminderBook(self.database, self.store, settings.reminders)
        self.memory = MemoryStore(
            self.database,
            self.store,
            max_facts=settings.bot.memory_max_facts,
            max_chars=settings.bot.memory_fact_max_chars,
        )
        self.summariser = Summariser(
            self.provider, self.store, self.memory, budget_tokens=settings.bot.context_tokens
        )
        services = ToolServices(
            reminders=self.reminders,
            mailer=self.mailer,
            weather=self.weather,
            timezones=self.store,
            memory=self.memory,
        )
        self.transcriber = build_transcriber(settings)
        self.media = MediaReader(settings.media, self.transcriber)
        # Approval questions live in the database: any replica resolves a press.
        self.approvals = Approvals(
            ApprovalStore(self.database),
            self.admin_store,
            timeout_seconds=settings.bot.confirm_timeout_seconds,
            poll_seconds=settings.approvals.poll_seconds,
        )
        self.engine = Engine(
            provider=self.provider,
            store=self.store,
            tools=self.tools,
            settings=settings.bot,
            policy=self.policy,
            limits=self.limits,
            services=services,
            observer=observer,
            log_bodies=settings.ops.log_bodies,
            memory=self.memory,
            summariser=self.summariser,
            media=self.media,
            approvals=self.approvals,
        )
        # The one object every platform receives: claims, turns, tools, confirmations.
        self.turn_store = TurnStore(self.database)
        self.feedback = FeedbackStore(self.database)
        self.prompts = PromptStore(self.database)
        self.group_context = GroupContext(
            ObservedStore(self.database),
            messages=settings.bot.group_context_messages,
            hours=settings.bot.group_context_hours,
        )
        self.desk = Desk(
            self.engine,
            self.store,
            self.admin,
            self.memory,
            media=self.media,
            turns=self.turn_store,
            holder=self.process_lease.name,
            languages=self.languages,
            questions=InputQuestions(settings.mcp.question_timeout_seconds),
            feedback=self.feedback,
            prompts=self.prompts,
            group_context=self.group_context,
        )
        self.platforms: list[Platform] = build_platforms(settings, self.desk)
        # One messenger per platform delivers reminders and alerts: the platforms' own,
        # overridden by explicit ones (the terminal chat's, tests').
        self.messengers: dict[str, Messenger] = {
            **{p.name: p.messenger for p in self.platforms},
            **{m.platform: m for m in messengers},
        }
        # Built last, on everything it needs; it watches the book for new reminders.
        self.scheduler = ReminderScheduler(
            self.reminders,
            settings.reminders,
            self.messengers,
            self.engine,
            observer=observer,
            locale_of=self.languages.locale_of,
        )
        self.reminders.watch(self.scheduler)
        self.web: WebServer | None = None
        # Exactly one replica on a database runs the reminder scheduler (bot/ops/leader.py).
        self.leadership = Leadership(
            LeaderLease(LeaseStore(self.database), "scheduler", settings.ops.lease_seconds),
            renew_seconds=settings.ops.lease_renew_seconds,
            on_gain=self.lead,
            on_loss=self.scheduler.stop,
            on_renew=self.leader_work,
        )
        # The leader resumes (or reports) turns of processes that died (bot/turn/durable.py).
        self.recovery = TurnRecovery(
            self.turn_store,
            self.process_lease,
            surface_for=self.resume_surface,
            run_turn=self.desk.turn,
            window=timedelta(minutes=settings.turns.resume_window_minutes),
            locale_of=self.desk.locale_of,
            budgets=self.limits.store,
            settler=self.desk.settler,
        )
        self._next_prune = 0.0
        self.started: list[Platform] = []
        # Set on shutdown: webhooks answer 503 (the platform retries), /readyz fails.
        self.draining = False

    async def start(self) -> None:
        """Bring the database schema up to date and connect to the MCP servers; call
        before handling any turn."""
        await migrate(self.settings.database.url)
        if self.mcp is not None:
            await self.mcp.start()

    def messenger_for(self, platform: str) -> Messenger | None:
        """The messenger that delivers reminders and alerts on `platform`, if any."""
        return self.messengers.get(platform)

    async def start_scheduler(self) -> None:
        """Schedule every pending reminder and start the clock (overdue ones fire now)."""
        await self.scheduler.start()

    async def serve(self, stop: asyncio.Event) -> None:
        """Run the long-lived services (web server, platforms, the reminder scheduler when
        this replica holds the leader lease) until `stop` is set, then shut down
        gracefully: take no new work, let turns in flight finish (at most
        PARLEY_SHUTDOWN_GRACE_SECONDS), stop the scheduler, the platforms, the server."""
        app = self.web_app()
        self.web = WebServer(app, host=self.settings.http.host, port=self.settings.http.port)
        self.draining = False
        await self.web.start()
        log.info("serving http://%s:%d/healthz", self.settings.http.host, self.web.port)
        if self.settings.admin.console_enabled:
            log.info("admin console: http://%s:%d/admin", self.settings.http.host, self.web.port)
        self.started = []
        try:
            # Held before the first claim: a turn claimed without it would look orphaned.
            await self.process_lease.start()
            for platform in self.platforms:
                await platform.start()
                self.started.append(platform)
            if self.started:
                log.info("platforms: %s", ", ".join(p.name for p in self.started))
            else:
                log.info("no chat platform configured yet: try `parley chat` in a terminal")
            await self.leadership.start()
            self.alerts.watch(build_platform_checks(self.settings))
            await stop.wait()
        finally:
            log.info("stopping: taking no new work")
            self.draining = True
            await self.alerts.stop()
            grace = self.settings.ops.shutdown_grace_seconds
            if self.engine.turns_in_flight:
                log.info("waiting up to %.1f s for %d turn(s)", grace, self.engine.turns_in_flight)
            if not await self.engine.drain(grace):
                cancelled = self.engine.cancel_turns()
                log.warning("%d turn(s) still running after %.1f s: cancelled", cancelled, grace)
                await self.engine.drain(5.0)
            await self.summariser.drain(min(grace, 5.0))
            await self.leadership.stop()
            await self.scheduler.stop()
            # Turns still open now (cancelled) are resumable at once, not after the lease.
            await self.process_lease.stop()
            for platform in reversed(self.started):
                await platform.stop()
            self.started = []
            await self.web.stop()

    def body_limits(self) -> list[BodyLimit]:
        """The largest body each endpoint reads (PARLEY_HTTP_*_MAX_BYTES)."""
        http = self.settings.http
        limits = [BodyLimit("/admin", http.console_max_bytes)]
        for platform in self.platforms:
            for route in platform.routes():
                path = getattr(route, "path", "")
                if platform.name == "slack":
                    # Events are JSON; presses and slash commands are forms.
                    limits.append(BodyLimit(path, http.slack_events_max_bytes, "application/json"))
                    limits.append(BodyLimit(path, http.slack_forms_max_bytes))
                elif platform.name == "telegram":
                    limits.append(BodyLimit(path, http.telegram_max_bytes))
        return limits

    async def lead(self) -> None:
        """Become the scheduler leader: start the reminder scheduler, then take over the
        turns of processes that died (this one's own predecessor, after a crash)."""
        await self.scheduler.start()
        await self._sweep_turns()

    async def _sweep_turns(self) -> None:
        try:
            await self.recovery.sweep()
        except Exception as exc:  # the scheduler's work must not depend on it
            log.warning("resuming unfinished turns failed (%s); trying again later", exc)

    def resume_surface(self, turn: StoredTurn, ticket: TurnTicket) -> Surface | None:
        """The surface a resumed turn answers through: its platform's, from the stored
        reply address (None: that platform does not run here)."""
        for platform in self.started:
            if platform.name == turn.platform and isinstance(platform, ResumesTurns):
                return platform.resume_surface(turn.reply, turn.preview, ticket.note_preview)
        return None

    async def leader_work(self) -> None:
        """What the scheduler leader does at each lease renewal: schedule reminders other
        replicas created, resume turns of processes that died and, at most hourly, forget
        event claims past their retention (off the hot path, where a claim stays one
        insert)."""
        await self.scheduler.pick_up_new()
        await self._sweep_turns()
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + PRUNE_EVERY_SECONDS
        cutoff = datetime.now(UTC) - timedelta(hours=self.settings.ops.event_retention_hours)
        removed = await self.store.prune_events(cutoff)
        if removed:
            log.info("forgot %d event claim(s) older than %s", removed, cutoff.isoformat())
        finished = await self.turn_store.prune(cutoff)
        if finished:
            log.info("forgot %d finished turn(s) older than %s", finished, cutoff.isoformat())
        # Observed group messages past PARLEY_GROUP_CONTEXT_HOURS (kept only when on).
        observed = await self.group_context.prune()
        if observed:
            log.info("forgot %d observed group message(s) past their retention", observed)
        # Approval questions past their expiry (the audit log keeps what happened).
        if self.approvals.store is not None:
            await self.approvals.store.prune(cutoff)

    def web_app(self) -> Starlette:
        """The ASGI app `serve()` runs: webhooks, the console, health, readiness, metrics."""
        routes = [route for platform in self.platforms for route in platform.routes()]
        routes.extend(self.console_routes())
        routes += ops_routes(
            ready=self.readiness,
            metrics=self.metrics.exposition,
            content_type=METRICS_CONTENT_TYPE,
            details_token=_secret(self.settings.ops.readyz_token),
        )
        app = create_web_app(
            health=self.health,
            routes=routes,
            body_limits=self.body_limits(),
            max_body=self.settings.http.max_bytes,
        )
        app.add_middleware(DrainingMiddleware, draining=lambda: self.draining)
        return app

    def console_routes(self) -> list[BaseRoute]:
        """The web console under /admin, or nothing (and a log line) without a password."""
        if not self.settings.admin.console_enabled:
            log.info("admin console disabled: set PARLEY_ADMIN_PASSWORD to enable it at /admin")
            return []
        from bot.web.console import Console  # Jinja2 and the templates: only when served

        console = Console(
            settings=self.settings.admin,
            store=self.admin_store,
            admin=self.admin,
            sessions=ConsoleSessionStore(self.database),
            clients=ClientResolver(self.settings.http.trusted_networks),
            public_url=self.settings.http.public_url,
            reminders=self.reminders,
            memory=self.memory,
            approvals=self.approvals,
            turns=self.turn_store,
            languages=self.languages,
            default_language=self.settings.language.default,
            feedback=self.feedback,
            prompts=self.prompts,
            traces=TraceEraser(self.database),
            overview=Overview(
                store=self.activity_store,
                recorder=self.activity,
                platforms=lambda: [
                    PlatformState(p.name, p in self.started) for p in self.platforms
                ],
                alerts=self.alerts,
            ),
        )
        return console.routes()

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether this replica should get traffic, and why (for `/readyz`)."""
        details: dict[str, object] = {}
        ok = True
        try:
            await self.health()
            details["database"] = "ok"
        except Exception as exc:
            ok, details["database"] = False, f"error: {exc}"
        configured = [p.name for p in self.platforms]
        started = [p.name for p in self.started]
        details["platforms"] = {name: name in started for name in configured}
        ok = ok and len(started) == len(configured)
        if self.scheduler.running:
            details["scheduler"] = "leader"
        elif self.leadership.running:
            details["scheduler"] = "standby"
        else:
            ok, details["scheduler"] = False, "stopped"
        if self.draining:
            ok, details["stopping"] = False, True
        return ok, details

    async def health(self) -> dict[str, object]:
        await self.database.ping()
        return {"database": "ok"}

    async def aclose(self) -> None:
        self.summariser.cancel()
        await self.leadership.stop()
        await self.scheduler.stop()
        await self.alerts.stop()
        await self.activity.stop()
        await self.weather.aclose()
        if self.mcp is not None:
            await self.mcp.aclose()
        await self.provider.aclose()
        if self.transcriber is not None:
            await self.transcriber.aclose()
        await self.database.aclose()
