"""What operators see: a turn id carried through each turn, and Prometheus metrics.

The engine and the scheduler report through an `Observer` (every method a no-op here);
`Metrics` is the Prometheus one the composition root builds. Its registry belongs to
the application (never prometheus-client's global default), so several applications in
one process (tests) never share counters.
"""

from __future__ import annotations

import contextvars
import logging
import platform
import uuid
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.domain import Usage

TURN_ID: contextvars.ContextVar[str] = contextvars.ContextVar("parley_turn_id", default="")

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST


def parley_version() -> str:
    """The installed distribution's version ("unknown" in an uninstalled checkout)."""
    try:
        return version("parley")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


def new_turn_id() -> str:
    return uuid.uuid4().hex[:12]


class TurnIdFilter(logging.Filter):
    """Puts the current turn's id on every record (`record.turn_id`, "" outside a turn)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.turn_id = TURN_ID.get()
        return True


class Observer:
    """Hooks the engine and the scheduler call; the base class records nothing."""

    def turn_started(self) -> None:
        return None

    def turn_finished(self, platform: str, outcome: str, seconds: float) -> None:
        return None

    def llm_call(self, model: str, usage: Usage, *, failed: bool) -> None:
        return None

    def tool_call(self, tool: str, *, failed: bool) -> None:
        return None

    def reminder_fired(self, *, late: bool, failed: bool) -> None:
        return None

    def approval_waiting(self, change: int) -> None:
        """A confirmation question was asked (+1) or answered, refused or expired (-1)."""
        return None

    def provider_failover(self, source: str, target: str) -> None:
        """A model call went to `target` because provider `source` failed."""
        return None

    def claim_failed(self, platform: str) -> None:
        """An incoming event could not be recorded (the database did not take it): the
        platform was told to deliver it again, or, where it cannot be, it is lost."""
        return None

    def turn_unsettled(self, change: int) -> None:
        """A finished turn's row could not be settled yet (+1; retried in the background),
        or was settled at last, or given up (-1)."""
        return None


class Observers(Observer):
    """Reports to each of several observers in turn (the metrics and the alerts)."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def turn_started(self) -> None:
        for observer in self.observers:
            observer.turn_started()

    def turn_finished(self, platform: str, outcome: str, seconds: float) -> None:
        for observer in self.observers:
            observer.turn_finished(platform, outcome, seconds)

    def llm_call(self, model: str, usage: Usage, *, failed: bool) -> None:
        for observer in self.observers:
            observer.llm_call(model, usage, failed=failed)

    def tool_call(self, tool: str, *, failed: bool) -> None:
        for observer in self.observers:
            observer.tool_call(tool, failed=failed)

    def reminder_fired(self, *, late: bool, failed: bool) -> None:
        for observer in self.observers:
            observer.reminder_fired(late=late, failed=failed)

    def approval_waiting(self, change: int) -> None:
        for observer in self.observers:
            observer.approval_waiting(change)

    def provider_failover(self, source: str, target: str) -> None:
        for observer in self.observers:
            observer.provider_failover(source, target)

    def claim_failed(self, platform: str) -> None:
        for observer in self.observers:
            observer.claim_failed(platform)

    def turn_unsettled(self, change: int) -> None:
        for observer in self.observers:
            observer.turn_unsettled(change)


class Metrics(Observer):
    """Prometheus counters and histograms in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # The standard process_* (CPU, memory, open files, start time) and python_info.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        r.register(GC_COLLECTOR)
        Info("parley_build", "The running Parley release", registry=r).info(
            {"version": parley_version(), "python": platform.python_version()}
        )
        self.turns = Counter(
            "parley_turns",
            "Turns handled, by platform and outcome",
            ["platform", "outcome"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "parley_turn_seconds",
            "Turn latency from message to finished answer",
            ["platform"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
            registry=r,
        )
        self.turns_in_flight = Gauge(
            "parley_turns_in_flight", "Turns running now (the work queue)", registry=r
        )
        self.llm_calls = Counter(
            "parley_llm_calls",
            "Model calls, by model and outcome",
            ["model", "outcome"],
            registry=r,
        )
        self.llm_tokens = Counter(
            "parley_llm_tokens", "Tokens used, by model and kind", ["model", "kind"], registry=r
        )
        self.tool_calls = Counter(
            "parley_tool_calls",
            "Tool calls, by tool and outcome",
            ["tool", "outcome"],
            registry=r,
        )
        self.approvals_waiting = Gauge(
            "parley_approvals_waiting",
            "Confirmation questions asked and not yet answered",
            registry=r,
        )
        self.failovers = Counter(
            "parley_provider_failover",
            "Model calls answered by a fallback provider, by the failed one and the fallback",
            ["from", "to"],
            registry=r,
        )
        self.reminders = Counter(
            "parley_reminders_fired",
            "Reminder deliveries, by timeliness and outcome",
            ["timeliness", "outcome"],
            registry=r,
        )
        self.claims_failed = Counter(
            "parley_claims_failed",
            "Incoming events that could not be recorded (the database did not take them)",
            ["platform"],
            registry=r,
        )
        self.turns_unsettled = Gauge(
            "parley_turns_unsettled",
            "Finished turns whose row is not settled yet (retried until the database is back)",
            registry=r,
        )

    def turn_started(self) -> None:
        self.turns_in_flight.inc()

    def turn_finished(self, platform: str, outcome: str, seconds: float) -> None:
        self.turns_in_flight.dec()
        self.turns.labels(platform or "none", outcome).inc()
        self.turn_seconds.labels(platform or "none").observe(seconds)

    def llm_call(self, model: str, usage: Usage, *, failed: bool) -> None:
        self.llm_calls.labels(model, "error" if failed else "ok").inc()
        if usage.prompt_tokens:
            self.llm_tokens.labels(model, "prompt").inc(usage.prompt_tokens)
        if usage.completion_tokens:
            self.llm_tokens.labels(model, "completion").inc(usage.completion_tokens)

    def tool_call(self, tool: str, *, failed: bool) -> None:
        self.tool_calls.labels(tool, "error" if failed else "ok").inc()

    def reminder_fired(self, *, late: bool, failed: bool) -> None:
        self.reminders.labels("late" if late else "on_time", "error" if failed else "ok").inc()

    def approval_waiting(self, change: int) -> None:
        self.approvals_waiting.inc(change)

    def provider_failover(self, source: str, target: str) -> None:
        self.failovers.labels(source, target).inc()

    def claim_failed(self, platform: str) -> None:
        self.claims_failed.labels(platform or "none").inc()

    def turn_unsettled(self, change: int) -> None:
        self.turns_unsettled.inc(change)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
