"""Operations: what keeps a deployment running and tells its operators how it runs.

The scheduler's leader lease among replicas (leader.py), metrics and turn ids
(observe.py), each turn's activity for the console (activity.py), alerts to admins
(alerts.py), `parley doctor` (doctor.py), logging and the filter that keeps secrets out of
it (logs.py, redact.py), and outgoing email (mail.py).

The names below are loaded when first used, so importing one module of the package does
not import the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.ops.activity import ActivityRecorder
    from bot.ops.alerts import Alerts
    from bot.ops.doctor import Check, CheckFailed, build_checks
    from bot.ops.leader import LeaderLease, Leadership
    from bot.ops.logs import configure_logging
    from bot.ops.mail import SMTPMailer
    from bot.ops.observe import Metrics, Observer, Observers
    from bot.ops.redact import SecretFilter

_HOME = {
    "ActivityRecorder": "bot.ops.activity",
    "Alerts": "bot.ops.alerts",
    "Check": "bot.ops.doctor",
    "CheckFailed": "bot.ops.doctor",
    "LeaderLease": "bot.ops.leader",
    "Leadership": "bot.ops.leader",
    "Metrics": "bot.ops.observe",
    "Observer": "bot.ops.observe",
    "Observers": "bot.ops.observe",
    "SMTPMailer": "bot.ops.mail",
    "SecretFilter": "bot.ops.redact",
    "build_checks": "bot.ops.doctor",
    "configure_logging": "bot.ops.logs",
}

__all__ = [
    "ActivityRecorder",
    "Alerts",
    "Check",
    "CheckFailed",
    "LeaderLease",
    "Leadership",
    "Metrics",
    "Observer",
    "Observers",
    "SMTPMailer",
    "SecretFilter",
    "build_checks",
    "configure_logging",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
