"""Threads for the fake Slack Web API: `conversations.replies` as Slack answers it.

docs.slack.dev (conversations.replies): `channel` and `ts` are required and `ts` must be
an existing message's; the answer is the thread's parent then its replies, oldest first,
`limit` at a time (default and most 1,000) with `has_more` and
`response_metadata.next_cursor` (an opaque cursor; a cursor it did not issue is
`invalid_cursor`); `latest`/`oldest` bound the range (exclusive unless `inclusive`).
Refused as Slack refuses: no channel or an unknown one `channel_not_found`, no `ts` or
an unknown thread `thread_not_found`, a channel the bot is not in `not_in_channel`, a
`latest` that is not a timestamp `invalid_ts_latest`. Rate limits (`ratelimited`, 429
with `Retry-After`) are the server's `rate_limit(...)`.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

MAX_LIMIT = 1000


class FakeThreads:
    """Threads by (channel, parent ts); channels the bot was removed from refuse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.left: set[str] = set()  # channels the bot is not a member of
        self._clock = 1_700_000_000

    def reset(self) -> None:
        with self._lock:
            self.threads.clear()
            self.left.clear()

    def post(
        self, channel: str, thread_ts: str, text: str, *, user: str = "", **fields: Any
    ) -> str:
        """Add a message to the thread `thread_ts` ("" starts one: the message is its
        parent); returns its ts."""
        with self._lock:
            self._clock += 1
            ts = f"{self._clock}.{len(self.threads) + 1:06d}"
            parent = thread_ts or ts
            message: dict[str, Any] = {"type": "message", "text": text, "ts": ts, **fields}
            if user:
                message["user"] = user
            thread = self.threads.setdefault((channel, parent), [])
            if thread:
                message["thread_ts"] = parent
                message["parent_user_id"] = thread[0].get("user", "")
                thread[0]["reply_count"] = len(thread)
                thread[0]["latest_reply"] = ts
            else:
                message["thread_ts"] = ts
            thread.append(message)
        return ts

    def replies(self, body: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(body.get("channel") or ""), str(body.get("ts") or "")
        with self._lock:
            known_channels = {key[0] for key in self.threads}
            if not channel or channel not in known_channels:
                return {"ok": False, "error": "channel_not_found"}
            if channel in self.left:
                return {"ok": False, "error": "not_in_channel"}
            thread = self.threads.get((channel, ts))
            if thread is None:  # a reply's ts names its thread too
                thread = next(
                    (
                        messages
                        for (where, _), messages in self.threads.items()
                        if where == channel and any(m["ts"] == ts for m in messages)
                    ),
                    None,
                )
            if not ts or thread is None:
                return {"ok": False, "error": "thread_not_found"}
            messages = [dict(message) for message in thread]
        try:
            latest = float(body["latest"]) if body.get("latest") else None
        except ValueError:
            return {"ok": False, "error": "invalid_ts_latest"}
        inclusive = str(body.get("inclusive", "")).lower() in ("1", "true")
        if latest is not None:
            messages = [
                m
                for m in messages
                if float(m["ts"]) < latest or (inclusive and float(m["ts"]) == latest)
            ]
        limit = max(1, min(int(body.get("limit") or MAX_LIMIT), MAX_LIMIT))
        start = 0
        if body.get("cursor"):
            start = _position(str(body["cursor"]))
            if start is None:
                return {"ok": False, "error": "invalid_cursor"}
        page = messages[start : start + limit]
        more = start + limit < len(messages)
        answer: dict[str, Any] = {"ok": True, "messages": page, "has_more": more}
        if more:
            answer["response_metadata"] = {"next_cursor": _cursor(start + limit)}
        return answer


def _cursor(position: int) -> str:
    return base64.b64encode(f"next_position:{position}".encode()).decode()


def _position(cursor: str) -> int | None:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix, _, number = text.partition(":")
    return int(number) if prefix == "next_position" and number.isdigit() else None
