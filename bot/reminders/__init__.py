"""Reminders: the book that stores them (book.py: create, list, cancel, within the caps),
the clock that says when and sends (clock.py, on the scheduler leader), the delivery of one
firing (delivery.py) and repeat patterns (recurrence.py); their table is read and written
by bot/storage/reminders.py."""

from bot.reminders.book import ReminderBook
from bot.reminders.clock import ReminderScheduler

__all__ = ["ReminderBook", "ReminderScheduler"]
