"""The tools Parley ships. The composition root registers `ALL_TOOLS`."""

from bot.toolkit import Tool
from tools.clock import get_current_time
from tools.email import send_email
from tools.memory import forget, recall, remember
from tools.reminders import cancel_reminder, create_reminder, list_reminders, set_timezone
from tools.weather import get_weather

ALL_TOOLS: tuple[Tool, ...] = (
    get_current_time,
    get_weather,
    send_email,
    create_reminder,
    list_reminders,
    cancel_reminder,
    set_timezone,
    remember,
    recall,
    forget,
)

__all__ = ["ALL_TOOLS"]
