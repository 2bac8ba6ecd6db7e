"""The ASGI side of Parley: health, and later webhooks and the admin console."""

from bot.web.server import WebServer, create_web_app

__all__ = ["WebServer", "create_web_app"]
