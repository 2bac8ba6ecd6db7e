"""Fixtures for the Slack adapter tests (defined in harness.py)."""

from tests.integrations.slack.harness import make_slack

__all__ = ["make_slack"]
