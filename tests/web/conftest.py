"""Fixtures for the console tests (defined in console_harness.py)."""

from tests.web.console_harness import make_console

__all__ = ["make_console"]
