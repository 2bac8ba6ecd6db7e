"""Logging set-up: readable lines by default, one JSON object per line on request.

Every line written inside a turn carries that turn's id (`turn_id` in JSON, `[id]` in
text), set by the engine through a context variable, so one turn can be followed across
the engine, the tools and the adapter. Message bodies are not logged unless
PARLEY_LOG_BODIES is on; secrets never are.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from bot.observe import TurnIdFilter


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        turn_id = getattr(record, "turn_id", "")
        record.turn = f" [{turn_id}]" if turn_id else ""
        return super().format(record)


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        turn_id = getattr(record, "turn_id", "")
        if turn_id:
            entry["turn_id"] = turn_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TurnIdFilter())
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)-7s %(name)s%(turn)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The HTTP clients log every request at INFO: noise, and URLs may carry tokens.
    for noisy in ("httpx", "httpx2", "httpcore", "openai", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
