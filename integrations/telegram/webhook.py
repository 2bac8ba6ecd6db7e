"""What a webhook request must be before python-telegram-bot parses it.

`Update.de_json` trusts its input: `{"update_id": 1, "message": 5}` raises deep inside
it, and a message whose `chat` is a string reaches the handlers. The secret token comes
first (`webhook_response`); then the body must be a JSON object shaped like an update in the
fields Parley reads, else 400 and one log line. The body's size is bounded before it is
read (PARLEY_HTTP_TELEGRAM_MAX_BYTES).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from telegram import Update
from telegram.ext import Application

log = logging.getLogger(__name__)

MESSAGES = ("message", "edited_message", "channel_post", "edited_channel_post")
OTHER_OBJECTS = ("callback_query", "my_chat_member", "chat_member", "inline_query")


class BadUpdate(ValueError):
    """The body is not an update Parley can read."""


def read_update(content_type: str, body: bytes) -> dict[str, Any]:
    """The update as a dict, or BadUpdate saying what is wrong with it."""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise BadUpdate(f"content type {media_type[:60]!r}, not application/json")
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadUpdate(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise BadUpdate(f"a JSON {type(payload).__name__}, not an object")
    if not _is_int(payload.get("update_id")):
        raise BadUpdate("no whole-number update_id")
    for key in MESSAGES:
        if key in payload:
            _check_message(payload[key], key)
    for key in OTHER_OBJECTS:
        if key in payload and not isinstance(payload[key], dict):
            raise BadUpdate(f"{key} is not an object")
    query = payload.get("callback_query")
    if isinstance(query, dict):
        _check_user(query.get("from"), "callback_query.from", required=True)
        if not isinstance(query.get("id"), str):
            raise BadUpdate("callback_query.id is not a string")
        if query.get("data") is not None and not isinstance(query["data"], str):
            raise BadUpdate("callback_query.data is not a string")
        if query.get("message") is not None:
            _check_message(query["message"], "callback_query.message")
    return payload


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise BadUpdate(f"{where} is not an object")
    chat = message.get("chat")
    if not isinstance(chat, dict) or not _is_int(chat.get("id")):
        raise BadUpdate(f"{where}.chat is not a chat with a whole-number id")
    _check_user(message.get("from"), f"{where}.from", required=False)
    for key in ("text", "caption"):
        if message.get(key) is not None and not isinstance(message[key], str):
            raise BadUpdate(f"{where}.{key} is not a string")
    for key in ("message_id", "message_thread_id", "date"):
        if message.get(key) is not None and not _is_int(message[key]):
            raise BadUpdate(f"{where}.{key} is not a whole number")
    for key in ("entities", "caption_entities"):
        if message.get(key) is not None and not isinstance(message[key], list):
            raise BadUpdate(f"{where}.{key} is not a list")
    for key in ("reply_to_message", "sender_chat"):
        if message.get(key) is not None and not isinstance(message[key], dict):
            raise BadUpdate(f"{where}.{key} is not an object")


def _check_user(user: Any, where: str, *, required: bool) -> None:
    if user is None and not required:
        return
    if not isinstance(user, dict) or not _is_int(user.get("id")):
        raise BadUpdate(f"{where} is not a user with a whole-number id")


async def webhook_response(
    request: Request,
    app: Application[Any, Any, Any, Any, Any, Any],
    secret: str,
    accept: Callable[[Update], Awaitable[bool]],
) -> Response:
    """Take one webhook request: the secret token first, then the body; a readable
    update is handed to `accept`, which claims it (claims.py) before Telegram is
    answered: 200 once it is recorded, 503 when it could not be, so Telegram delivers it
    again rather than Parley dropping it after a 200."""
    given = request.headers.get("x-telegram-bot-api-secret-token", "")
    if not secrets.compare_digest(given.encode(), secret.encode()):
        log.warning("telegram webhook: request without the right secret token refused")
        return Response(status_code=HTTPStatus.FORBIDDEN)
    if not app.running:
        # Stopping: a non-2xx answer makes Telegram deliver the update again later.
        return Response(status_code=HTTPStatus.SERVICE_UNAVAILABLE)
    try:
        payload = read_update(request.headers.get("content-type", ""), await request.body())
        update = Update.de_json(payload, app.bot)
    except Exception as exc:  # untrusted input: whatever it breaks is a 400, not a 500
        log.warning("telegram webhook: unreadable update refused with 400: %s", _reason(exc))
        return Response(status_code=HTTPStatus.BAD_REQUEST)
    if not await accept(update):
        return Response(status_code=HTTPStatus.SERVICE_UNAVAILABLE)
    return Response(status_code=HTTPStatus.OK)


def _reason(exc: Exception) -> str:
    # Our own checks say what is wrong; PTB's errors may quote the body, so only their type.
    return str(exc) if isinstance(exc, BadUpdate) else f"{type(exc).__name__} in Update.de_json"
