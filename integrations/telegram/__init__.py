"""Telegram adapter: python-telegram-bot v22 behind Parley's Platform and Surface."""

from integrations.telegram.platform import TelegramPlatform
from integrations.telegram.surface import TelegramMessenger, TelegramSurface

__all__ = ["TelegramMessenger", "TelegramPlatform", "TelegramSurface"]
