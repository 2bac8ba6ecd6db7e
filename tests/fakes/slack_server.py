"""A fake Slack Web API (and Socket Mode websocket) for tests and benchmarks.

`FakeSlackServer` is a real aiohttp server on 127.0.0.1 (an ephemeral port) running its
own event loop in a background thread, so slack_sdk's `AsyncWebClient` talks to it over
real sockets with `base_url=server.api_url`. It records every call per method (JSON and
form bodies alike), answers the methods Parley uses the way Slack does, and can be told
to fail: `fail(method, error)` answers `{"ok": false, "error": ...}` and
`rate_limit(method, retry_after)` answers 429 with a `Retry-After` header.

Messages are refused as Slack refuses them: blocks past Block Kit's limits answer
`invalid_blocks` (a section's text over 3,000 characters, a button's over 75, more than
50 blocks, more than 25 elements in an actions block, checkboxes or menus with too many
options or initial options not among them, a `context_actions` block with more than 5
elements or feedback buttons without both buttons), and `chat.postEphemeral` without a
`user` answers `user_not_in_channel`. Stream chunks are checked against docs.slack.dev:
`task_update` needs an id, a title and one of its four statuses, its details and output at most 256
characters (`invalid_chunks` otherwise), and an append needs text or chunks. Agent
sessions (`agents.sessions.setStatus` / `rename`) check their status and title;
`speak_assistant_api_only()` makes them unknown, as for a workspace without them.

`conversations.replies` serves the threads of `threads` (tests/fakes/slack_threads.py:
cursor pages, `latest`, and Slack's refusals).

`apps.connections.open` returns `ws://…/socket`, where the server speaks Socket Mode's
protocol: a `hello` on connect, envelopes pushed with `push_envelope`, acks recorded in
`socket_acks`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.http import AiohttpServer, FakeServer
from tests.fakes.slack_threads import FakeThreads

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"


@dataclass
class _Failure:
    error: str
    times: int
    status: int = 200
    retry_after: int = 0


class FakeSlackServer(FakeServer):
    """Records Web API calls in `calls[method]` (request bodies, in order)."""

    def __init__(self) -> None:
        self._aiohttp = AiohttpServer(self._build, name="fake-slack")
        super().__init__(self._aiohttp)
        self.api_url = ""
        self.calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.call_times: dict[str, list[float]] = defaultdict(list)
        self.socket_acks: list[dict[str, Any]] = []
        self.users: dict[str, dict[str, Any]] = {}
        # Tokens Slack does not know: every method answers `invalid_auth` for them.
        self.rejected_tokens: set[str] = set()
        self._failures: dict[str, list[_Failure]] = defaultdict(list)
        self._ts = itertools.count(1)
        self._order = itertools.count(1)
        self._lock = threading.Lock()
        self._sockets: list[web.WebSocketResponse] = []
        # Shared files: id -> (the file object Slack describes it with, the bytes).
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        # File id -> where its download redirects (a 302, as a CDN hop would).
        self.file_redirects: dict[str, str] = {}
        self.downloads: list[dict[str, str]] = []
        self._socket_ready = threading.Event()
        self.agent_sessions = True
        self.threads = FakeThreads()  # conversations.replies (tests/fakes/slack_threads.py)

    # -- lifecycle ---------------------------------------------------------------------

    def _build(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{id}", self._response_url)
        app.router.add_get("/files-pri/{path:.+}", self._file)
        app.router.add_get("/socket", self._socket)
        return app

    def started(self, root: str) -> None:
        self.api_url = f"{root}/api/"

    def wake(self) -> None:
        # Open Socket Mode connections would keep the loop from stopping.
        async def close_sockets() -> None:
            for ws in list(self._sockets):
                await ws.close()

        if self._aiohttp.loop is not None:
            asyncio.run_coroutine_threadsafe(close_sockets(), self._aiohttp.loop).result(5)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.call_times.clear()
            self._failures.clear()
            self.socket_acks.clear()
            self.users.clear()
            self.rejected_tokens.clear()
            self.files.clear()
            self.file_redirects.clear()
            self.downloads.clear()
            self.agent_sessions = True
        self.threads.reset()

    # -- scripting ---------------------------------------------------------------------

    def speak_assistant_api_only(self) -> None:
        """No agents.sessions.* methods (until `reset`): `unknown_method`, as Slack says."""
        self.agent_sessions = False

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """The next `times` calls of `method` answer `{"ok": false, "error": error}`."""
        with self._lock:
            self._failures[method].append(_Failure(error, times))

    def rate_limit(self, method: str, *, retry_after: int = 0, times: int = 1) -> None:
        """The next `times` calls of `method` answer 429 with `Retry-After`."""
        with self._lock:
            self._failures[method].append(_Failure("ratelimited", times, 429, retry_after))

    def add_file(
        self,
        data: bytes,
        *,
        name: str,
        mimetype: str,
        size: int | None = None,
        check_file_info: bool = False,
        url: str | None = None,
        redirect_to: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Share a file: returns the object a `file_share` event carries in `files`, with
        private URLs on this server (`check_file_info`: a Slack Connect file, whose
        details only files.info gives). `fields` add to it (`subtype`, `duration_ms`).

        `url` names another host's URL instead (Slack describes external and remote
        files with off-Slack URLs, and a forged payload names anything); `redirect_to`
        makes this server's download answer a 302 to that URL."""
        with self._lock:
            file_id = f"F{len(self.files) + 1:06d}"
        private = f"http://127.0.0.1:{self.port}/files-pri/{TEAM_ID}-{file_id}/{name}"
        download = private.replace(f"{file_id}/", f"{file_id}/download/")
        described = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rpartition(".")[2],
            "size": len(data) if size is None else size,
            "url_private": url or private,
            "url_private_download": url or download,
            "file_access": "visible",
            **fields,
        }
        with self._lock:
            self.files[file_id] = (described, data)
            if redirect_to is not None:
                self.file_redirects[file_id] = redirect_to
        if check_file_info:
            return {"id": file_id, "file_access": "check_file_info"}
        return described

    async def _file(self, request: web.Request) -> web.Response:
        """A file's bytes for a request with a bot token Slack knows; anything else gets
        the sign-in page, with a 200, as Slack answers it (which is why clients must look
        at what they got: the files:read scope and the Authorization header matter)."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        path = request.match_info["path"]
        file_id = path.partition("/")[0].removeprefix(f"{TEAM_ID}-")
        with self._lock:
            self.downloads.append({"path": path, "token": token})
            stored = self.files.get(file_id)
            redirect = self.file_redirects.get(file_id)
        if stored is None:
            return web.Response(status=404, text="file not found")
        if redirect is not None:
            raise web.HTTPFound(redirect)
        if not token.startswith("xoxb-") or token in self.rejected_tokens:
            page = "<!DOCTYPE html><html><body>Sign in to Slack</body></html>"
            return web.Response(text=page, content_type="text/html")
        return web.Response(body=stored[1], content_type="application/octet-stream")

    def count(self, method: str) -> int:
        with self._lock:
            return len(self.calls.get(method, []))

    def bodies(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.calls.get(method, []))

    async def wait_for(
        self, method: str, count: int = 1, *, within: float = 5.0
    ) -> list[dict[str, Any]]:
        """The bodies of `method`'s calls once there are at least `count` of them."""
        await self.wait_until(
            lambda: self.count(method) >= count,
            lambda: (
                f"expected {count} call(s) of {method}, got {self.count(method)}; "
                f"calls: { {m: len(c) for m, c in self.calls.items()} }"
            ),
            within=within,
        )
        return self.bodies(method)

    # -- Socket Mode -------------------------------------------------------------------

    def wait_for_socket(self, timeout: float = 5.0) -> bool:
        return self._socket_ready.wait(timeout)

    def push_envelope(
        self, payload: dict[str, Any], *, kind: str = "events_api", retry_attempt: int = 0
    ) -> str:
        """Send one Socket Mode envelope to every connected client; returns its id."""
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        loop = self._aiohttp.loop
        assert loop is not None

        async def send() -> None:
            for ws in list(self._sockets):
                await ws.send_str(json.dumps(envelope))

        asyncio.run_coroutine_threadsafe(send(), loop).result(5)
        return envelope_id

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": "A0001"},
                }
            )
        )
        self._socket_ready.set()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    with self._lock:
                        self.socket_acks.append(json.loads(message.data))
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._socket_ready.clear()
        return ws

    # -- Web API -----------------------------------------------------------------------

    @property
    def response_url(self) -> str:
        """A response_url for interaction payloads (what is posted lands in `calls`)."""
        return self.api_url.replace("/api/", "/response/1")

    async def _response_url(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.calls["response_url"].append(body)
        return web.json_response({"ok": True})

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.read()
        body: dict[str, Any]
        if request.method == "GET":
            body = dict(request.query)
        elif request.content_type == "application/json":
            body = json.loads(raw or b"{}")
        else:
            body = dict(parse_qsl(raw.decode()))
            for key in ("blocks", "prompts"):
                if isinstance(body.get(key), str):
                    body[key] = json.loads(body[key])
        body["_token"] = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not body["_token"] or body["_token"] in self.rejected_tokens:
            with self._lock:
                self.calls[method].append(body)
            error = "invalid_auth" if body["_token"] else "not_authed"
            return web.json_response({"ok": False, "error": error})
        with self._lock:
            body["_order"] = next(self._order)
            self.calls[method].append(body)
            self.call_times[method].append(time.monotonic())
            failures = self._failures.get(method)
            failure = failures[0] if failures else None
            if failure is not None:
                body["_failed"] = failure.error
                failure.times -= 1
                if failure.times <= 0:
                    failures.pop(0)  # type: ignore[union-attr]
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            return web.json_response(
                {"ok": False, "error": failure.error}, status=failure.status, headers=headers
            )
        return web.json_response(self._answer(method, body))

    def _agent_session(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        """agents.sessions.setStatus / rename as docs.slack.dev describes them."""
        if not self.agent_sessions or method not in (
            "agents.sessions.setStatus",
            "agents.sessions.rename",
        ):
            return {"ok": False, "error": "unknown_method"}
        title = body.get("title")
        if title is not None and not 1 <= len(str(title)) <= 200:
            return {"ok": False, "error": "invalid_title"}
        if method == "agents.sessions.rename":
            if not title or not body.get("channel_id"):
                return {"ok": False, "error": "invalid_arguments"}
            return {"ok": True, "title": title}
        if body.get("status") not in SESSION_STATUSES:
            return {"ok": False, "error": "invalid_status"}
        return {"ok": True, "status": body["status"], "title": title or ""}

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel") or body.get("channel_id") or ""
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            problem = _blocks_problem(body.get("blocks"))
            if problem:
                body["_failed"] = "invalid_blocks"
                return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        if method in ("chat.stopStream",):
            problem = _blocks_problem(body.get("blocks"))
            if problem:
                body["_failed"] = "invalid_blocks"
                return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
        if method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            problem = _chunks_problem(body.get("chunks"))
            if problem:
                body["_failed"] = "invalid_chunks"
                return {"ok": False, "error": "invalid_chunks", "errors": [problem]}
            if method != "chat.stopStream" and not (
                body.get("markdown_text") or body.get("chunks")
            ):
                body["_failed"] = "no_text"
                return {"ok": False, "error": "no_text"}
        if method.startswith("agents.sessions."):
            return self._agent_session(method, body)
        if method == "chat.postEphemeral" and not body.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "parley",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method in ("chat.postMessage", "chat.startStream"):
            ts = self._next_ts()
            body["_ts"] = ts
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
        if method in ("chat.update", "chat.appendStream", "chat.stopStream"):
            return {"ok": True, "channel": channel, "ts": body.get("ts")}
        if method == "chat.postEphemeral":
            ts = self._next_ts()
            body["_ts"] = ts
            return {"ok": True, "message_ts": ts}
        if method == "users.info":
            user = body.get("user", "")
            info = {"id": user, **self.users.get(user, {})}
            # The locale is opt-in (docs.slack.dev users.info: include_locale).
            if str(body.get("include_locale", "")).lower() not in ("true", "1"):
                info.pop("locale", None)
            return {"ok": True, "user": info}
        if method == "files.info":
            with self._lock:
                stored = self.files.get(str(body.get("file", "")))
            if stored is None:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": stored[0]}
        if method == "conversations.replies":
            return self.threads.replies(body)
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": channel}}
        if method == "apps.connections.open":
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        if method.startswith("assistant.threads."):
            return {"ok": True}
        return {"ok": False, "error": "unknown_method"}


SESSION_STATUSES = frozenset({"active", "processing", "suspended", "closed"})
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})
CHUNK_TYPES = frozenset({"markdown_text", "task_update", "plan_update", "blocks"})


def _chunks_problem(chunks: Any) -> str:
    """Why Slack would refuse these stream chunks (docs.slack.dev chat.appendStream), or ""."""
    if chunks is None:
        return ""
    if not isinstance(chunks, list) or not chunks:
        return "chunks must be a non-empty array"
    for index, chunk in enumerate(chunks):
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind not in CHUNK_TYPES:
            return f"unknown chunk type [json-pointer:/chunks/{index}/type]"
        if kind == "markdown_text" and not chunk.get("text"):
            return f"text is required [json-pointer:/chunks/{index}/text]"
        if kind == "task_update":
            for key in ("id", "title"):
                if not isinstance(chunk.get(key), str) or not chunk[key]:
                    return f"{key} is required [json-pointer:/chunks/{index}/{key}]"
            if chunk.get("status") not in TASK_STATUSES:
                return f"invalid status [json-pointer:/chunks/{index}/status]"
            for key in ("details", "output"):
                if len(str(chunk.get(key, ""))) > 256:
                    return f"must be at most 256 characters [json-pointer:/chunks/{index}/{key}]"
        if kind == "plan_update" and not chunk.get("title"):
            return f"title is required [json-pointer:/chunks/{index}/title]"
    return ""


# Most options an element takes (docs.slack.dev/reference/block-kit/block-elements).
OPTION_LIMITS = {"checkboxes": 10, "multi_static_select": 100, "static_select": 100}


def _options_problem(element: dict[str, Any]) -> str:
    """Why Slack would refuse a checkboxes element's or a menu's options, or "": too
    many, an option's text over 75 characters or value over 150, or initial options
    that are not among the options."""
    limit = OPTION_LIMITS.get(str(element.get("type")))
    if limit is None:
        return ""
    options = element.get("options") or []
    if not 1 <= len(options) <= limit:
        return f"must provide 1 to {limit} options"
    for option in options:
        if len((option.get("text") or {}).get("text", "")) > 75:
            return "option text must be less than 76 characters"
        if len(str(option.get("value", ""))) > 150:
            return "option value must be less than 151 characters"
    if any(initial not in options for initial in element.get("initial_options") or []):
        return "initial options must match the options"
    return ""


def _blocks_problem(blocks: Any) -> str:
    """Why Slack would refuse these blocks (docs.slack.dev/reference/block-kit), or ""."""
    if not blocks:
        return ""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    if len(blocks) > 50:
        return "no more than 50 items allowed [json-pointer:/blocks]"
    for index, block in enumerate(blocks):
        if block.get("type") == "context_actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 5:
                return f"1 to 5 elements allowed [json-pointer:/blocks/{index}/elements]"
            for element in elements:
                if element.get("type") == "feedback_buttons" and not all(
                    (element.get(side) or {}).get("value")
                    and ((element.get(side) or {}).get("text") or {}).get("text")
                    for side in ("positive_button", "negative_button")
                ):
                    return f"feedback buttons need both buttons [json-pointer:/blocks/{index}]"
            continue
        text = (block.get("text") or {}).get("text", "") if block.get("type") == "section" else ""
        if len(text) > 3000:
            return f"must be less than 3001 characters [json-pointer:/blocks/{index}/text/text]"
        if block.get("type") == "actions" and len(block.get("elements") or []) > 25:
            return f"no more than 25 items allowed [json-pointer:/blocks/{index}/elements]"
        for element in block.get("elements") or []:
            problem = _options_problem(element)
            if problem:
                return f"{problem} [json-pointer:/blocks/{index}/elements]"
            label = (
                (element.get("text") or {}).get("text", "")
                if element.get("type") == "button"
                else ""
            )
            if len(label) > 75:
                return f"must be less than 76 characters [json-pointer:/blocks/{index}/elements]"
    return ""
