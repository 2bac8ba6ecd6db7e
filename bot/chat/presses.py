"""Presses on Parley's buttons: who may press, and what the presser is told.

A button under an approval card, a tool's question or a /tools switch is pressed by
somebody, not always the person it was for. The adapter asks the desk (`Desk.press`) what
became of the press and shows the words from here, so every platform refuses a stranger's
press, an expired question or a non-admin's switch in the same words.
"""

from __future__ import annotations

from bot.approvals.questions import InputPress
from bot.i18n import N_, _

__all__ = ["NOT_ADMIN", "InputPress", "press_notice"]

NOT_ADMIN = N_("Only admins can change which tools this channel may use. Your attempt was logged.")


def press_notice(outcome: InputPress) -> str:
    """What the presser is told when their press was not taken."""
    if outcome is InputPress.NOT_YOURS:
        return _("This question is for someone else.")
    if outcome is InputPress.EXPIRED:
        return _("This question has expired.")
    return _("That answer does not fit this question.")
