"""Slack adapter: bolt's AsyncApp over HTTP events or Socket Mode."""

from integrations.slack.platform import SlackPlatform
from integrations.slack.surface import SlackSurface
from integrations.slack.webapi import SlackMessenger

__all__ = ["SlackMessenger", "SlackPlatform", "SlackSurface"]
