"""Reminders: the clock that says when (clock.py) and the delivery of one firing
(delivery.py); their table is read and written by bot/storage/reminders.py."""

from bot.reminders.clock import ReminderScheduler

__all__ = ["ReminderScheduler"]
