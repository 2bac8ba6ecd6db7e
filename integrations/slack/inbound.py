"""The door of `/slack/events`: what a request must show before bolt sees it.

In order: the signature headers, present and fresh (no body read yet); the body, read
within its limit (bot/web/limits.py); its signature over the raw bytes (HMAC-SHA256 of
`v0:<timestamp>:<body>` computed here: slack_sdk's verifier decodes the body as UTF-8
first and raises on anything else); then its shape, UTF-8 included.
bolt checks the signature again, but it crashes (500, with a traceback in the log) on a
body that is not what Slack sends, a JSON array or `"event": 5`, so those get 400 here.
Only the fields bolt and Parley read are checked: Slack adds fields all the time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300  # slack_sdk's window: an older timestamp is a replay
OUR_EVENTS = frozenset({"message", "app_mention", "app_home_opened"})
# Fields read as text from the events Parley listens to.
EVENT_STRINGS = (
    *("type", "subtype", "channel", "channel_type", "user", "text", "ts", "thread_ts"),
    *("bot_id", "tab", "team", "event_ts"),
)
BODY_STRINGS = ("type", "team_id", "api_app_id", "event_id", "token", "challenge")
PAYLOAD_OBJECTS = ("user", "team", "channel", "container", "message", "view", "enterprise")
ACTION_STRINGS = ("action_id", "block_id", "type", "value", "action_ts")
# What Slack always sends with a slash command; bolt's respond() needs the response_url.
COMMAND_FIELDS = ("team_id", "channel_id", "user_id", "response_url")


class Refused(Exception):
    """Why a request is refused; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def check_headers(headers: Headers, now: float | None = None) -> None:
    """Refused(401) unless the signature headers are there and the timestamp is fresh."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    if not timestamp or not headers.get("x-slack-signature"):
        raise Refused(401, "no X-Slack-Request-Timestamp or X-Slack-Signature header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(401, "X-Slack-Request-Timestamp is not a Unix time")
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_SECONDS:
        raise Refused(401, "stale X-Slack-Request-Timestamp (a replay, or a wrong clock)")


def check_signature(secret: bytes, headers: Headers, body: bytes) -> None:
    """Refused(401) unless X-Slack-Signature is the HMAC of the raw bytes (after
    `check_headers`, which checked the timestamp)."""
    timestamp = headers.get("x-slack-request-timestamp", "").encode("ascii", "replace")
    digest = hmac.new(secret, b"v0:" + timestamp + b":" + body, hashlib.sha256).hexdigest()
    given = headers.get("x-slack-signature", "").encode("ascii", "replace")
    if not hmac.compare_digest(f"v0={digest}".encode("ascii"), given):
        raise Refused(401, "invalid signature")


def check_body(headers: Headers, body: bytes) -> None:
    """Refused(400) unless the body has the shape of an event, a press or a command."""
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    if media_type == "application/json":
        _check_event_body(_json_object(text, "the body"))
    elif media_type == "application/x-www-form-urlencoded":
        try:
            form = parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=200)
        except (UnicodeDecodeError, ValueError) as exc:
            raise Refused(400, f"unreadable form ({type(exc).__name__})") from None
        if "payload" in form:
            _check_payload(_json_object(form["payload"][0], "the payload field"))
        elif "command" in form:
            missing = [key for key in COMMAND_FIELDS if not form.get(key, [""])[0]]
            if missing:
                raise Refused(400, f"a slash command without {', '.join(missing)}")
    else:
        raise Refused(400, f"unexpected content type {media_type[:60]!r}")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refused(400, f"{what} is not JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise Refused(400, f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def _strings(value: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if value.get(key) is not None and not isinstance(value[key], str):
            raise Refused(400, f"{where}.{key} is not a string")


def _objects(value: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if value.get(key) is not None and not isinstance(value[key], dict):
            raise Refused(400, f"{where}.{key} is not an object")


def _list_of_objects(value: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise Refused(400, f"{where}.{key} is not a list of objects")
    return items


def _check_event_body(body: dict[str, Any]) -> None:
    _strings(body, BODY_STRINGS, "body")
    _list_of_objects(body, "authorizations", "body")
    if "event" not in body:
        return
    event = body["event"]
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise Refused(400, "body.event is not an object with a type")
    if event["type"] in OUR_EVENTS:
        _strings(event, EVENT_STRINGS, "event")
        _list_of_objects(event, "files", "event")
        if event["type"] in ("message", "app_mention") and not event.get("channel"):
            raise Refused(400, f"a {event['type']} event without a channel")
    else:  # other events carry a user or channel object; bolt reads either
        for key in ("user", "channel"):
            if event.get(key) is not None and not isinstance(event[key], str | dict):
                raise Refused(400, f"event.{key} is neither a string nor an object")


def _check_payload(payload: dict[str, Any]) -> None:
    _strings(payload, ("type", "token", "trigger_id", "response_url"), "payload")
    _objects(payload, PAYLOAD_OBJECTS, "payload")
    for action in _list_of_objects(payload, "actions", "payload"):
        _strings(action, ACTION_STRINGS, "action")
        _list_of_objects(action, "selected_options", "action")


async def refusal_of(request: Request, secret: bytes) -> Response | None:
    """The answer to a request that fails the checks (signature headers before the body
    is read, then the signature and the body's shape), or None for one bolt may see."""
    try:
        check_headers(request.headers)
        body = await request.body()  # within PARLEY_HTTP_SLACK_*_MAX_BYTES
        if secret:
            check_signature(secret, request.headers, body)
        check_body(request.headers, body)
    except Refused as refused:
        client = request.client.host if request.client else "?"
        log.warning("slack: refused a request from %s with %d: %s", client, refused.status, refused)
        return Response(str(refused), status_code=refused.status, media_type="text/plain")
    return None
