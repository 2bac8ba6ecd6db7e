"""A fake Telegram Bot API server for tests and benchmarks.

`FakeTelegramServer` is a real HTTP server on 127.0.0.1 (an ephemeral port), served by
uvicorn in a background thread, so python-telegram-bot talks to it over real sockets
through `base_url`. It answers the methods Parley uses the way the Bot API does (including
"message is not modified", "message is too long" and HTML that does not parse), records
every call with its time, queues updates for `getUpdates` (long polling with offsets,
confirmed once a later offset is asked for), and can be told to fail the next calls of a
method with a 429 and `retry_after` or any 400/403 error.

`python -m tests.fakes.telegram_server` serves one in a child process for benchmarks;
the `/_control/...` routes inject updates and read the recorded calls over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import uuid4

from tests.fakes.http import FakeServer, ThreadedServer

__all__ = [
    "BOT_ID",
    "BOT_USERNAME",
    "Call",
    "FakeTelegramServer",
    "as_chat_message",
    "callback_update",
    "group_message",
    "private_media",
    "private_message",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

BOT_ID = 7000001
BOT_USERNAME = "parley_test_bot"
TOKEN = "7000001:TEST-token_abcdefghijklmnopqrstuvwxyz"

_TEXT_KEYS = frozenset(
    {"text", "parse_mode", "url", "secret_token", "callback_query_id", "action", "drop_pending"}
)
_TAGS = frozenset({"b", "i", "s", "u", "code", "pre", "a", "blockquote", "tg-spoiler", "em"})
# Rich messages (Bot API 10.1): InputRichMessage's fields, and the HTML the fake accepts
# in one (`tg-thinking` in drafts only). Limits per message: 32,768 characters and 500
# blocks (from third-party libraries; UNVERIFIED against the Bot API pages).
_RICH_FIELDS = frozenset({"html", "markdown", "blocks", "media", "is_rtl", "skip_entity_detection"})
_RICH_TAGS = _TAGS | {"p", "br", "h1", "h2", "h3", "h4", "ul", "ol", "li", "table", "tr", "td"}
RICH_LIMIT = 32_768
RICH_BLOCKS = 500


@dataclass(frozen=True, slots=True)
class Call:
    """One request the server received: Bot API method, decoded parameters, arrival time
    (`time.monotonic()`, comparable across processes on one machine)."""

    method: str
    params: dict[str, Any]
    at: float


@dataclass(slots=True)
class _Failure:
    method: str
    code: int
    description: str
    retry_after: int | None
    times: int
    when: Callable[[dict[str, Any]], bool] | None


@dataclass(slots=True)
class _State:
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    # file_id -> the size getFile claims when it is not the bytes' (a lying server).
    claimed_sizes: dict[str, int] = field(default_factory=dict)
    updates: list[dict[str, Any]] = field(default_factory=list)
    confirmed: int = 0
    messages: dict[tuple[int, int], tuple[str, str | None]] = field(default_factory=dict)
    failures: list[_Failure] = field(default_factory=list)
    webhook_url: str = ""
    admins: set[tuple[int, int]] = field(default_factory=set)
    # Ephemeral messages (Bot API 10.3): (chat, ephemeral message id) -> receiver.
    ephemeral: dict[tuple[int, int], int] = field(default_factory=dict)
    # False: an older Bot API server, which refuses `ephemeral_message_parameters` (400)
    # and does not know the ephemeral methods (404).
    ephemeral_supported: bool = True
    # False: a Bot API server older than 10.1, without rich messages: their methods are
    # unknown (404) and editMessageText ignores `rich_message` (so the text is missing).
    rich_supported: bool = True


def private_message(
    user_id: int, text: str, *, name: str = "Alice", language: str = ""
) -> dict[str, Any]:
    """A text message in the private chat with `user_id` (an update without its id);
    `language` is the sender's app language (`from.language_code`)."""
    user = _user(user_id, name, language)
    chat = {"id": user_id, "type": "private", "first_name": name}
    return {"message": _message(chat, user, text)}


def group_message(
    chat_id: int,
    user_id: int,
    text: str,
    *,
    name: str = "Bob",
    thread_id: int | None = None,
    reply_to_bot: bool = False,
    entities: list[dict[str, Any]] | None = None,
    replying_to: tuple[int, str, str] | None = None,
    quote: str = "",
) -> dict[str, Any]:
    """A text message in the supergroup `chat_id`; `thread_id` makes it a forum-topic
    message; mention and command entities are derived from the text unless given.
    `replying_to` (user id, first name, text): it replies to that person's message;
    `quote`: the part of it the replier selected (Bot API `TextQuote`)."""
    user = {"id": user_id, "is_bot": False, "first_name": name}
    chat: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": "Team"}
    if thread_id is not None:
        chat["is_forum"] = True
    message = _message(chat, user, text, entities)
    if thread_id is not None:
        message["message_thread_id"] = thread_id
        message["is_topic_message"] = True
    if reply_to_bot:
        bot = {"id": BOT_ID, "is_bot": True, "first_name": "Parley", "username": BOT_USERNAME}
        message["reply_to_message"] = {
            "message_id": 1,
            "date": int(time.time()) - 60,
            "chat": chat,
            "from": bot,
            "text": "an earlier answer",
        }
    if replying_to is not None:
        author_id, author_name, replied_text = replying_to
        message["reply_to_message"] = {
            "message_id": 2,
            "date": int(time.time()) - 30,
            "chat": chat,
            "from": {"id": author_id, "is_bot": False, "first_name": author_name},
            "text": replied_text,
        }
        if quote:
            at = replied_text.find(quote)
            message["quote"] = {"text": quote, "position": max(at, 0), "is_manual": True}
    return {"message": message}


# Bots may download files of up to 20 MB (core.telegram.org/bots/api#getfile).
DOWNLOAD_LIMIT = 20 * 1024 * 1024


def private_media(
    user_id: int,
    media: dict[str, Any],
    *,
    caption: str = "",
    name: str = "Alice",
    language: str = "",
) -> dict[str, Any]:
    """A message without text in the private chat with `user_id`, carrying `media`
    (`{"voice": {...}}`, `{"photo": [...]}`, `{"document": {...}}`) and a caption."""
    user = _user(user_id, name, language)
    chat = {"id": user_id, "type": "private", "first_name": name}
    message = _message(chat, user, "")
    del message["text"]
    message.update(media)
    if caption:
        message["caption"] = caption
    return {"message": message}


# The fake users the Bot API puts in `from` when a message was posted as a chat.
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
CHANNEL_BOT = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}
SERVICE_USER = {"id": 777000, "is_bot": False, "first_name": "Telegram"}


def as_chat_message(
    chat_id: int, text: str, *, channel: dict[str, Any] | None = None, automatic: bool = False
) -> dict[str, Any]:
    """A supergroup message posted as a chat, the way the Bot API delivers it: by an
    anonymous admin (no `channel`: `sender_chat` is the group), by a member posting as
    `channel`, or (`automatic`) `channel`'s post forwarded into its discussion group."""
    group: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": "Team"}
    if channel is None:
        sender, user = group, ANONYMOUS_ADMIN
    else:
        sender = {"type": "channel", **channel}
        user = SERVICE_USER if automatic else CHANNEL_BOT
    message = _message(group, user, text)
    message["sender_chat"] = sender
    if automatic:
        message["is_automatic_forward"] = True
        message["forward_origin"] = {
            "type": "channel",
            "date": message["date"] - 1,
            "chat": sender,
            "message_id": 7,
        }
    return {"message": message}


def _message(
    chat: dict[str, Any],
    user: dict[str, Any],
    text: str,
    entities: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": chat,
        "from": user,
        "text": text,
    }
    if entities is None:
        entities = []
        for word_start, word in _words(text):
            if word.startswith("@"):
                entities.append({"type": "mention", "offset": word_start, "length": len(word)})
            elif word.startswith("/") and word_start == 0:
                entities.append({"type": "bot_command", "offset": 0, "length": len(word)})
    if entities:
        message["entities"] = entities
    return message


def _words(text: str) -> list[tuple[int, str]]:
    found, start = [], 0
    for word in text.split(" "):
        if word:
            found.append((start, word))
        start += len(word) + 1
    return found


_message_ids = itertools.count(100)


def _user(user_id: int, name: str, language: str = "") -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": name}
    if language:
        user["language_code"] = language
    return user


def callback_update(
    chat: dict[str, Any],
    message_id: int,
    user_id: int,
    data: str,
    *,
    name: str = "Alice",
    ephemeral: bool = False,
    language: str = "",
) -> dict[str, Any]:
    """A press on an inline button of the bot's message `message_id` in `chat` (of an
    ephemeral message: no `message`, as for inline messages; UNVERIFIED)."""
    bot = {"id": BOT_ID, "is_bot": True, "first_name": "Parley", "username": BOT_USERNAME}
    if ephemeral:
        return {
            "callback_query": {
                "id": f"cb-{next(_message_ids)}",
                "from": _user(user_id, name, language),
                "chat_instance": "ci-1",
                "data": data,
            }
        }
    return {
        "callback_query": {
            "id": f"cb-{next(_message_ids)}",
            "from": _user(user_id, name, language),
            "chat_instance": "ci-1",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": chat,
                "from": bot,
                "text": "question",
            },
        }
    }


class _HTMLCheck(HTMLParser):
    def __init__(self, tags: frozenset[str] = _TAGS) -> None:
        super().__init__(convert_charrefs=True)
        self.tags = tags
        self.stack: list[str] = []
        self.error = ""
        self.text: list[str] = []
        self.blocks = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.tags:
            self.error = f'unsupported start tag "{tag}"'
        if tag in {"p", "li", "tr", "pre", "tg-thinking", "h1", "h2", "h3", "h4"}:
            self.blocks += 1
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = f'can\'t find end tag corresponding to start tag "{tag}"'

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class FakeTelegramServer(FakeServer):
    """A recording Bot API server. Point python-telegram-bot at `base_url`, queue updates
    with `push`, inspect `calls`, and script failures with `fail`."""

    def __init__(self, token: str = TOKEN, username: str = BOT_USERNAME) -> None:
        # A bot's id is the part of its token before the colon, as on Telegram.
        self.token, self.username = token, username
        self.bot_id = int(token.partition(":")[0])
        self.base_url = ""
        self.calls: list[Call] = []
        self._state = _State()
        self._last_update_id = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Event | None = None
        super().__init__(ThreadedServer(self._app, name="fake-telegram", on_loop=self._bind_loop))
        self._message_ids: dict[int, itertools.count[int]] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def started(self, root: str) -> None:
        self.base_url = f"{root}/bot"

    def _bind_loop(self) -> None:
        # Long polls wait on an Event of the server's own loop.
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()

    def reset(self) -> None:
        """Forget calls, updates, messages, failures and admins (between tests)."""
        with self._lock:
            self.calls.clear()
            self._state = _State()
            self._message_ids.clear()

    # -- scripting ---------------------------------------------------------------------

    def push(self, update: dict[str, Any], *, update_id: int | None = None) -> int:
        """Queue an update for getUpdates; returns its update_id (give one to re-deliver)."""
        with self._lock:
            uid = self._last_update_id + 1 if update_id is None else update_id
            self._last_update_id = max(self._last_update_id, uid)
            self._state.updates.append({"update_id": uid, **update})
        self.wake()
        return uid

    def fail(
        self,
        method: str,
        code: int,
        description: str,
        *,
        retry_after: int | None = None,
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (matching `when`) with an error."""
        with self._lock:
            self._state.failures.append(
                _Failure(method, code, description, retry_after, times, when)
            )

    def add_file(
        self,
        data: bytes,
        *,
        path: str = "",
        size: int | None = None,
        get_file_size: int | None = None,
    ) -> dict[str, Any]:
        """Keep a file to be downloaded (getFile, then /file/bot<token>/<path>); returns
        the fields a message carries about it (`file_id`, `file_unique_id`, `file_size`:
        `size` to declare another size than the bytes have). `get_file_size` makes
        getFile claim that size too; `path` may be anything getFile should answer (an
        absolute path, as a local Bot API server gives)."""
        with self._lock:
            number = len(self._state.files) + 1
            file_id = f"FILE{number}-{uuid4().hex[:8]}"
            self._state.files[file_id] = (path or f"documents/file_{number}", data)
            if get_file_size is not None:
                self._state.claimed_sizes[file_id] = get_file_size
        return {
            "file_id": file_id,
            "file_unique_id": f"U{number}",
            "file_size": len(data) if size is None else size,
        }

    def speak_bot_api_before_ephemeral_messages(self) -> None:
        """Behave as a Bot API server older than 10.3 (until `reset`)."""
        with self._lock:
            self._state.ephemeral_supported = False

    def speak_bot_api_before_rich_messages(self) -> None:
        """Behave as a Bot API server older than 10.1 (until `reset`)."""
        with self._lock:
            self._state.rich_supported = False

    def ephemeral_receiver(self, chat_id: int, ephemeral_id: int) -> int | None:
        with self._lock:
            return self._state.ephemeral.get((chat_id, ephemeral_id))

    def make_admin(self, chat_id: int, user_id: int) -> None:
        with self._lock:
            self._state.admins.add((chat_id, user_id))

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._lock:
            return sum(1 for u in self._state.updates if u["update_id"] >= self._state.confirmed)

    def shown(self, chat_id: int) -> list[str]:
        """The text of every message the bot has in `chat_id` now (after edits), oldest
        first: what the chat's members see."""
        with self._lock:
            found = sorted(
                (mid, text)
                for (cid, mid), (text, _) in self._state.messages.items()
                if cid == chat_id
            )
        return [text for _, text in found]

    @property
    def webhook_url(self) -> str:
        return self._state.webhook_url

    def sent_texts(self) -> list[str]:
        """The text of every message sent (sendMessage; a rich message's Markdown or
        HTML), oldest first."""
        texts = []
        for call in self.calls_of("sendMessage", "sendRichMessage"):
            rich = call.params.get("rich_message")
            if isinstance(rich, dict):
                texts.append(str(rich.get("markdown") or rich.get("html") or ""))
            else:
                texts.append(str(call.params.get("text", "")))
        return texts

    def calls_of(self, *methods: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method in methods]

    async def wait_for(
        self, predicate: Callable[[FakeTelegramServer], bool], within: float = 5.0
    ) -> None:
        """Wait until `predicate(self)` holds; fail with the calls seen so far."""
        await self.wait_until(
            lambda: predicate(self),
            lambda: f"calls: {[(c.method, c.params) for c in self.calls]}",
            within=within,
        )

    def wake(self) -> None:
        loop, arrived = self._loop, self._arrived
        if loop is not None and arrived is not None and not loop.is_closed():
            loop.call_soon_threadsafe(arrived.set)

    # -- serving -----------------------------------------------------------------------

    async def _app(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        path: str = scope["path"]
        if path.startswith("/file/bot"):
            await self._download(path, send)
            return
        if path.startswith("/_control/"):
            status, payload = self._control(path, body)
        else:
            prefix, _, method = path.rpartition("/")
            if prefix != f"/bot{self.token}":
                status, payload = _unknown_token(prefix.removeprefix("/bot"))
            else:
                params = _decode(scope, body)
                with self._lock:
                    self.calls.append(Call(method, params, time.monotonic()))
                status, payload = await self._answer(method, params)
        data = json.dumps(payload).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _download(self, path: str, send: Callable[[Message], Awaitable[None]]) -> None:
        """A file by its path under the bot's token; 404 for another token or path (the
        Bot API answers a wrong token's download with a 404 too)."""
        token, _, file_path = path.removeprefix("/file/bot").partition("/")
        with self._lock:
            self.calls.append(Call("download", {"path": file_path}, time.monotonic()))
            found = [data for p, data in self._state.files.values() if p == file_path]
        if token != self.token or not found:
            body = json.dumps({"ok": False, "error_code": 404, "description": "Not Found"})
            status, data, kind = 404, body.encode(), b"application/json"
        else:
            status, data, kind = 200, found[0], b"application/octet-stream"
        headers = [(b"content-type", kind), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        # In pieces, as a large file arrives: a client may stop reading part-way.
        piece = 256 * 1024
        for start in range(0, max(len(data), 1), piece):
            more = start + piece < len(data)
            await send(
                {
                    "type": "http.response.body",
                    "body": data[start : start + piece],
                    "more_body": more,
                }
            )

    def _control(self, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/_control/push":
            return 200, {"update_id": self.push(json.loads(body))}
        if path == "/_control/calls":
            with self._lock:
                return 200, [[c.method, c.params, c.at] for c in self.calls]
        return 404, {}

    async def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, Any]:
        failure = self._take_failure(method, params)
        if failure is not None:
            error: dict[str, Any] = {
                "ok": False,
                "error_code": failure.code,
                "description": failure.description,
            }
            if failure.retry_after is not None:
                error["parameters"] = {"retry_after": failure.retry_after}
            return failure.code, error
        if method == "getUpdates":
            return 200, {"ok": True, "result": await self._get_updates(params)}
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found: method"}
        result = handler(params)
        if isinstance(result, tuple):
            return result
        return 200, {"ok": True, "result": result}

    def _take_failure(self, method: str, params: dict[str, Any]) -> _Failure | None:
        with self._lock:
            for failure in self._state.failures:
                if failure.method == method and (failure.when is None or failure.when(params)):
                    failure.times -= 1
                    if failure.times <= 0:
                        self._state.failures.remove(failure)
                    return failure
        return None

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        assert self._arrived is not None
        with self._lock:
            if offset:
                self._state.confirmed = max(self._state.confirmed, offset)
                self._state.updates = [u for u in self._state.updates if u["update_id"] >= offset]
        while True:
            with self._lock:
                ready = [u for u in self._state.updates if u["update_id"] >= offset][:limit]
                self._arrived.clear()
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0 or self.stopping:
                return ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    def _bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Parley",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self._bot_user()

    def _sent(self, chat_id: int, text: str, params: dict[str, Any]) -> dict[str, Any]:
        counter = self._message_ids.setdefault(chat_id, itertools.count(5000))
        message_id = next(counter)
        with self._lock:
            self._state.messages[(chat_id, message_id)] = _rendition(params)
        chat_type = "private" if chat_id > 0 else "supergroup"
        return {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type},
            "from": self._bot_user(),
            "text": text,
        }

    def _check_text(self, params: dict[str, Any], *, required: bool = True) -> tuple[str, Any]:
        """The visible text of a message, or an error answer like Telegram's."""
        text = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML":
            check = _HTMLCheck()
            check.feed(text)
            check.close()
            if check.error or check.stack:
                reason = check.error or f'can\'t find end tag corresponding to "{check.stack[-1]}"'
                return "", _bad_request(f"can't parse entities: {reason}")
            text = "".join(check.text)
        elif params.get("parse_mode") is not None:
            return "", _bad_request("unsupported parse_mode in this fake")
        if required and not text.strip():
            return "", _bad_request("message text is empty")
        if len(text.encode("utf-16-le")) // 2 > 4096:
            return "", _bad_request("message is too long")
        return text, None

    def _check_rich(self, params: dict[str, Any], *, draft: bool = False) -> tuple[str, Any]:
        """The content of an InputRichMessage, or an error answer like Telegram's."""
        rich = params.get("rich_message")
        if not isinstance(rich, dict):
            return "", _bad_request("rich_message is required")
        unknown = sorted(set(rich) - _RICH_FIELDS)
        if unknown:
            return "", _bad_request(f"unknown field {unknown[0]} in rich_message")
        given = [key for key in ("html", "markdown", "blocks") if key in rich]
        if len(given) != 1:
            return "", _bad_request("exactly one of html, markdown or blocks must be used")
        if given == ["blocks"]:
            return "", _bad_request("blocks are not supported by this fake")
        content = rich[given[0]]
        if not isinstance(content, str):
            return "", _bad_request(f"field {given[0]} must be a string")
        blocks = _markdown_blocks(content)
        if given == ["html"]:
            check = _HTMLCheck(_RICH_TAGS | ({"tg-thinking"} if draft else set()))
            check.feed(content)
            check.close()
            if check.error or check.stack:
                reason = check.error or f'can\'t find end tag corresponding to "{check.stack[-1]}"'
                return "", _bad_request(f"can't parse rich message: {reason}")
            blocks = max(1, check.blocks)
            text = "".join(check.text)
        else:
            text = content
        if not draft and not text.strip():
            return "", _bad_request("message text is empty")
        if len(text.encode("utf-16-le")) // 2 > RICH_LIMIT:
            return "", _bad_request("rich message is too long")
        if blocks > RICH_BLOCKS:
            return "", _bad_request("rich message has too many blocks")
        return content, None

    def _m_sendRichMessage(self, params: dict[str, Any]) -> Any:
        if not self._state.rich_supported:
            return _unknown_method()
        content, error = self._check_rich(params)
        if error is not None:
            return error
        sent = self._sent(int(params["chat_id"]), content, params)
        del sent["text"]
        return sent

    def _m_sendRichMessageDraft(self, params: dict[str, Any]) -> Any:
        if not self._state.rich_supported:
            return _unknown_method()
        if int(params["chat_id"]) < 0:
            return _bad_request("sendRichMessageDraft is available in private chats only")
        if not int(params.get("draft_id") or 0):
            return _bad_request("draft_id must be non-zero")
        _, error = self._check_rich(params, draft=True)
        return error if error is not None else True

    def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        text, error = self._check_text(params)
        if error is not None:
            return error
        if "ephemeral_message_parameters" in params:
            return self._ephemeral(int(params["chat_id"]), text, params)
        return self._sent(int(params["chat_id"]), text, params)

    def _ephemeral(self, chat_id: int, text: str, params: dict[str, Any]) -> Any:
        """An ephemeral message (Bot API 10.3). The shape of the answer (an
        `ephemeral_message_id`) is UNVERIFIED against the real server; Parley treats an
        answer without one as "posted to the chat"."""
        if not self._state.ephemeral_supported:
            return _bad_request("unknown parameter ephemeral_message_parameters")
        options = params["ephemeral_message_parameters"]
        if isinstance(options, str):
            options = json.loads(options)
        receiver = options.get("receiver_user_id") if isinstance(options, dict) else None
        if not isinstance(receiver, int) and not options.get("callback_query_id"):
            return _bad_request("receiver_user_id or callback_query_id is required")
        counter = self._message_ids.setdefault(chat_id, itertools.count(5000))
        ephemeral_id = next(counter)
        with self._lock:
            self._state.ephemeral[(chat_id, ephemeral_id)] = int(receiver or 0)
        return {
            "ephemeral_message_id": ephemeral_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "from": self._bot_user(),
            "text": text,
        }

    def _m_editEphemeralMessageText(self, params: dict[str, Any]) -> Any:
        if not self._state.ephemeral_supported:
            return 404, {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        _, error = self._check_text(params)
        if error is not None:
            return error
        key = (int(params["chat_id"]), int(params["ephemeral_message_id"]))
        with self._lock:
            receiver = self._state.ephemeral.get(key)
        if receiver is None or receiver != int(params.get("receiver_user_id") or 0):
            return _bad_request("message to edit not found")
        return True

    def _m_sendMessageDraft(self, params: dict[str, Any]) -> Any:
        if int(params["chat_id"]) < 0:
            return _bad_request("sendMessageDraft is available in private chats only")
        if not int(params.get("draft_id") or 0):
            return _bad_request("draft_id must be non-zero")
        _, error = self._check_text(params, required=False)
        return error if error is not None else True

    def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if "rich_message" in params and self._state.rich_supported:
            text, error = self._check_rich(params)
        else:
            params = {k: v for k, v in params.items() if k != "rich_message"}
            text, error = self._check_text(params)
        if error is not None:
            return error
        with self._lock:
            old = self._state.messages.get(key)
            if old is None:
                return _bad_request("message to edit not found")
            if old == _rendition(params) and "reply_markup" not in params:
                return _bad_request(
                    "message is not modified: specified new message content and reply "
                    "markup are exactly the same as a current content and reply markup "
                    "of the message"
                )
            self._state.messages[key] = _rendition(params)
        chat_type = "private" if key[0] > 0 else "supergroup"
        return {
            "message_id": key[1],
            "date": int(time.time()),
            "edit_date": int(time.time()),
            "chat": {"id": key[0], "type": chat_type},
            "from": self._bot_user(),
            "text": text,
        }

    def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        key = (int(params["chat_id"]), int(params["message_id"]))
        with self._lock:
            if key not in self._state.messages:
                return _bad_request("message to edit not found")
        return True

    def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        # core.telegram.org/bots/api#setmycommands: a two-letter ISO 639-1 code or none;
        # 1-100 commands of 1-32 lowercase letters, digits and underscores, descriptions
        # of 1-256 characters.
        language = str(params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            return _bad_request("language code is invalid")
        commands = params.get("commands")
        if isinstance(commands, str):
            commands = json.loads(commands)
        if not isinstance(commands, list) or not 1 <= len(commands) <= 100:
            return _bad_request("commands list is invalid")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                return _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                return _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        return True

    def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        url = urlsplit(str(params.get("url", "")))
        if url.geturl() and url.scheme != "https":
            return _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if url.geturl() and (url.port or 443) not in (80, 88, 443, 8443):
            return _bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        secret = str(params.get("secret_token", ""))
        if secret and not all(c.isalnum() or c in "_-" for c in secret):
            return _bad_request("secret token contains unallowed characters")
        self._state.webhook_url = str(params.get("url", ""))
        return True

    def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self._state.webhook_url = ""
        return True

    def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params.get("file_id", ""))
        with self._lock:
            stored = self._state.files.get(file_id)
            claimed = self._state.claimed_sizes.get(file_id)
        if stored is None:
            return _bad_request("invalid file_id")
        path, data = stored
        if len(data) > DOWNLOAD_LIMIT and claimed is None:
            return _bad_request("file is too big")
        return {
            "file_id": file_id,
            "file_unique_id": file_id.partition("-")[0],
            "file_size": len(data) if claimed is None else claimed,
            "file_path": path,
        }

    def _m_getChatMember(self, params: dict[str, Any]) -> Any:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        if user_id <= 0:
            # Users only: a chat's id (an anonymous admin's or a channel's) is refused.
            return _bad_request("PARTICIPANT_ID_INVALID")
        status = "administrator" if (chat_id, user_id) in self._state.admins else "member"
        user = {"id": user_id, "is_bot": False, "first_name": "Member"}
        if status == "administrator":
            return {
                "status": status,
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
        return {"status": status, "user": user}


def _rendition(params: dict[str, Any]) -> tuple[str, str | None]:
    rich = params.get("rich_message")
    if isinstance(rich, dict):
        kind = "markdown" if "markdown" in rich else "html"
        return str(rich.get(kind, "")), f"rich:{kind}"
    return str(params.get("text", "")), params.get("parse_mode")


def _markdown_blocks(markdown: str) -> int:
    """Blocks of a rich Markdown message, as Telegram would count them at most: a code
    fence is one, every other non-empty line (paragraph line, list item, table row) one."""
    count, fence = 0, False
    for line in markdown.splitlines():
        if line.strip().startswith("```"):
            if not fence:
                count += 1
            fence = not fence
        elif not fence and line.strip():
            count += 1
    return count


def _unknown_method() -> tuple[int, Any]:
    return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}


def _unknown_token(token: str) -> tuple[int, Any]:
    """What the Bot API answers a token it does not know: 401 Unauthorized for one shaped
    like a token (`<bot id>:<secret>`, e.g. revoked or mistyped), 404 for anything else."""
    bot_id, colon, secret = token.partition(":")
    if colon and bot_id.isdigit() and secret:
        return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
    return 404, {"ok": False, "error_code": 404, "description": "Not Found"}


def _bad_request(description: str) -> tuple[int, Any]:
    return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {description}"}


def _decode(scope: Scope, body: bytes) -> dict[str, Any]:
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode()
    if content_type.startswith("application/json"):
        decoded: dict[str, Any] = json.loads(body or b"{}")
        return decoded
    params: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        if key in _TEXT_KEYS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def main() -> None:
    """Serve in this process until stdin closes; print the base URL first."""
    with FakeTelegramServer() as server:
        print(server.base_url, flush=True)  # noqa: T201
        sys.stdin.read()


if __name__ == "__main__":
    main()
