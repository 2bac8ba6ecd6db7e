"""Fixtures for the web tests (defined in console_harness.py and served.py)."""

from tests.web.console_harness import make_console
from tests.web.served import make_served

__all__ = ["make_console", "make_served"]
