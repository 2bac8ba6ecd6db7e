"""`SecretFilter`: no configured secret reaches a log line, whoever wrote the record.

Parley's own code never logs a secret, but libraries do: python-telegram-bot logs its
Bot API URL (which carries the bot token) at DEBUG, and an HTTP error's text may quote a
URL or a header. The filter sits on the root handlers, so it sees every record that is
written, and replaces each secret in the message, its arguments and the exception text
with the name of the setting that holds it (`[TELEGRAM_BOT_TOKEN]`).

The secrets are every `SecretStr` setting (`Settings.secrets()`), found by type rather
than by a list that a new setting could be missing from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import quote


class SecretFilter(logging.Filter):
    """Replaces every known secret in a record by `[NAME]`; passes every record on.

    The message is formatted here (arguments included) and stored back without
    arguments, and the exception text is rendered here so the formatter reuses the
    redacted copy (`record.exc_text`) instead of rendering the traceback again.
    """

    def __init__(self, secrets: Mapping[str, str]) -> None:
        super().__init__()
        self._names: dict[str, str] = {}
        for secret, name in secrets.items():
            # A URL may carry the secret percent-encoded (a token's ":" becomes "%3A").
            for form in {secret, quote(secret, safe="")}:
                self._names[form] = name
        # Longest first, so a secret that contains another is replaced whole.
        forms = sorted(self._names, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, forms))) if forms else None
        self._formatter = logging.Formatter()

    def redact(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda match: f"[{self._names[match.group()]}]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        message = record.getMessage()
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True
