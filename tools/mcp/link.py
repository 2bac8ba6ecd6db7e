"""`MCPServerLink`: one configured server's connection, its listed tools in the registry,
how it learns of changes, and its restarts (its calls are calls.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import mcp_types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bot.domain import ToolContext
from bot.toolkit import SchemaArguments, Tool, ToolRegistry, schema_tool
from tools.mcp.calls import ToolCalls, describe, is_dead
from tools.mcp.config import MCPServerConfig, public_name
from tools.mcp.elicitation import Elicitation
from tools.mcp.results import mcp_card
from tools.mcp.transport import (
    CLIENT_INFO,
    HTTPSession,
    StderrTail,
    http_transport,
    stdio_transport,
)

log = logging.getLogger("tools.mcp")


class MCPServerLink(ToolCalls):
    """One configured server: its connection, its tools, and their restarts."""

    def __init__(
        self,
        config: MCPServerConfig,
        registry: ToolRegistry,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        ping_interval: float = 30.0,
        probe_timeout: float = 5.0,
        hard_timeout: float = 600.0,
        mode: str = "auto",
    ) -> None:
        self.config = config
        self._mode = mode  # the SDK's protocol choice: "auto", or "legacy" (handshake era)
        self.available = False
        self.last_error = ""
        self.last_failure = ""  # why the connection last ended (kept after a recovery)
        self.restarts = 0
        self.failures_after_listing = 0  # connection losses of a server that had listed
        self.protocol_version = ""  # as negotiated: 2026-07-28 stateless, or a handshake era
        self._registry = registry
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._ping_interval = ping_interval
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._broken = asyncio.Event()
        self._refresh_wanted = asyncio.Event()
        self._listed = asyncio.Event()  # set after the first listing attempt, good or bad
        # Set once a connection has chosen how it learns of changes (subscribed, or listing
        # on a timer), or has failed: the doctor waits for it before judging the server.
        self._settled = asyncio.Event()
        self.listings = 0  # complete tool listings so far
        self.subscribed = False  # to tool-list changes (2026-07-28 `subscriptions/listen`)
        self._names: dict[str, str] = {}  # MCP tool name -> public name
        self._task_only: set[str] = set()  # tools left out: they run only as tasks
        self._annotations: dict[str, dict[str, Any]] = {}  # as last listed, per MCP name
        self.stderr = StderrTail()  # a stdio server's last stderr lines
        self.sessions_renewed = 0  # new sessions after the server forgot ours (HTTP)
        self._renew = False  # the current connection ends for a new session, not a failure
        self._changed = asyncio.Condition()  # notified when `_client`/`available` change
        self._probe_timeout = probe_timeout
        self._hard_timeout = hard_timeout  # of a call whose progress keeps extending it
        self._probes: set[asyncio.Task[None]] = set()
        self._http_session = HTTPSession()  # of the current HTTP connection
        self._elicitation = Elicitation(config.name)  # its questions go to the call's user

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp:{self.config.name}")

    async def wait_listed(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listed.wait(), seconds)

    async def wait_settled(self, seconds: float) -> None:
        """Wait (up to `seconds`) until the connection has subscribed to changes or fallen
        back to listing on a timer, or has failed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), seconds)

    async def answers(self, seconds: float) -> str:
        """Whether the server answers a tool listing within `seconds` now: "" if it does,
        otherwise why not."""
        client = self._client
        if client is None or not self.available:
            return self.last_error or "not connected"
        try:
            async with asyncio.timeout(seconds):
                await client.list_tools(cache_mode="bypass")
        except TimeoutError:
            return f"no answer to a tool listing within {seconds:g} s"
        except Exception as exc:
            return describe(exc)
        return ""

    async def stop(self) -> None:
        self._stop.set()
        for probe in list(self._probes):
            probe.cancel()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def _target(self) -> Any:
        if self.config.url:
            self._http_session = HTTPSession()
            return http_transport(self.config.url, self.config.headers, self._http_session)
        params = StdioServerParameters(
            command=self.config.command,
            args=list(self.config.args),
            env=self.config.env,
            cwd=self.config.cwd,
        )
        return stdio_transport(self.config.name, params, self.stderr)

    async def _run(self) -> None:
        delay = self._initial_backoff
        while not self._stop.is_set():
            connected_at = time.monotonic()
            try:
                async with Client(
                    self._target(),
                    read_timeout_seconds=self.config.call_timeout,
                    message_handler=self._on_message,
                    elicitation_callback=self._elicitation.answer,
                    mode=self._mode,
                    client_info=CLIENT_INFO,
                ) as client:
                    self._client = client
                    self.protocol_version = client.protocol_version
                    self._http_session.protocol_version = client.protocol_version
                    self._broken.clear()
                    await self._refresh(client)
                    self.available = True
                    self.last_error = ""
                    await self._changed_state()
                    log.info(
                        "MCP server %s (protocol %s): %d tool(s) available",
                        self.config.name,
                        self.protocol_version,
                        len(self._names),
                    )
                    self._listed.set()
                    await self._watch(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of this server stays with this server
                self.last_error = describe(exc)
                if self.stderr.lines:
                    self.last_error += f"; its stderr last said: {self.stderr.lines[-1]}"
                log.debug("MCP server %s failed", self.config.name, exc_info=True)
            finally:
                self._client = None
                self.last_failure = self.last_error or self.last_failure
                if self.available and not self._renew:
                    self.failures_after_listing += 1
                self.available = False
                await self._changed_state()
            self._listed.set()
            self._settled.set()
            if self._stop.is_set():
                return
            if self._renew:  # the server forgot our session: a new one at once
                self._renew = False
                self.sessions_renewed += 1
                continue
            if time.monotonic() - connected_at > 60:
                delay = self._initial_backoff  # it ran a while: a fresh failure
            log.warning(
                "MCP server %s is down (%s); its tools are unavailable; restarting in %.1f s",
                self.config.name,
                self.last_error or "connection closed",
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(delay * 2, self._max_backoff)
            self.restarts += 1

    async def _watch(self, client: Client) -> None:
        """Return when the server is gone or we stop; refresh tools when they change."""
        listener = asyncio.create_task(self._listen(client))
        waiters = [
            listener,
            asyncio.create_task(self._stop.wait()),
            asyncio.create_task(self._broken.wait()),
        ]
        try:
            while True:
                refresh = asyncio.create_task(self._refresh_wanted.wait())
                done, _ = await asyncio.wait([*waiters, refresh], return_when="FIRST_COMPLETED")
                if refresh in done:
                    self._refresh_wanted.clear()
                    await self._refresh(client)
                else:
                    refresh.cancel()
                if set(waiters) & done:
                    if listener in done and not listener.cancelled():
                        listener.result()  # re-raise why the listener ended
                    return
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _listen(self, client: Client) -> None:
        """Wait for tool-list changes; return never (a dead server raises).

        A 2026-07-28 server that advertises `tools.listChanged` is subscribed to with
        `subscriptions/listen`. The subscription is optional: the reference servers (time,
        fetch, git) answer -32601, others -32603 "Subscription limit reached". A refusal, or
        a server that does not advertise changes, means "no subscriptions", never a dead
        server: the tools are then listed on a timer, as for a handshake-era server (whose
        changes arrive through `_on_message`), which also notices a server that died."""
        while client.protocol_version in MODERN_PROTOCOL_VERSIONS and _announces_changes(client):
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    honored = subscription.honored
                    if honored is None or not honored.tools_list_changed:
                        log.info(
                            "MCP server %s did not honour the tool-list subscription; "
                            "listing its tools every %g s",
                            self.config.name,
                            self._ping_interval,
                        )
                        break
                    self.subscribed = True
                    self._settled.set()
                    acknowledged = time.monotonic()
                    async for _event in subscription:
                        self._refresh_wanted.set()
                # A graceful end of the stream (a server may close long-lived streams):
                # listen again, unless it ended at once (then listen no more: a timer
                # instead of a loop of subscriptions). A dead server fails the new one.
                self.subscribed = False
                if time.monotonic() - acknowledged < self._ping_interval:
                    log.info(
                        "MCP server %s ended the tool-list subscription at once; "
                        "listing its tools every %g s",
                        self.config.name,
                        self._ping_interval,
                    )
                    break
            except (MCPError, TimeoutError) as exc:
                if isinstance(exc, MCPError) and is_dead(exc):
                    raise
                reason = (
                    f"{exc.code}: {exc.message[:200]}"
                    if isinstance(exc, MCPError)
                    else ("no acknowledgment in time")
                )
                log.info(
                    "MCP server %s refused the tool-list subscription (%s); "
                    "listing its tools every %g s",
                    self.config.name,
                    reason,
                    self._ping_interval,
                )
                break
        self.subscribed = False
        self._settled.set()
        while True:
            await asyncio.sleep(self._ping_interval)
            self._refresh_wanted.set()

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            self._refresh_wanted.set()

    async def _refresh(self, client: Client) -> None:
        listed: list[mcp_types.Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor, cache_mode="refresh")
            listed.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        allowed = self.config.allowed_tools
        tools: list[Tool] = []
        names: dict[str, str] = {}
        taken = {t.name for t in self._registry if t.source != self.config.source}
        for item in listed:
            if allowed is not None and item.name not in allowed:
                continue
            if item.execution is not None and item.execution.task_support == "required":
                # Task-augmented calls (create, poll, result) are not made by this client
                # (nor by the SDK's): a tool that runs only so is never offered.
                if item.name not in self._task_only:
                    self._task_only.add(item.name)
                    log.info(
                        "MCP server %s: tool %s runs only as a task, which Parley does not "
                        "support; it is not offered",
                        self.config.name,
                        item.name,
                    )
                continue
            public = public_name(self.config.name, item.name, taken | set(names.values()))
            try:
                tools.append(self._tool(public, item))
            except ValueError as exc:
                log.warning("MCP server %s: tool %s skipped: %s", self.config.name, item.name, exc)
                continue
            names[item.name] = public
            self._note_annotations(item)
        self._names = names
        self._registry.replace_source(self.config.source, tools)
        self.listings += 1
        if allowed is not None and (missing := allowed - set(names)):
            log.warning(
                "MCP server %s does not offer allowed tool(s): %s",
                self.config.name,
                ", ".join(sorted(missing)),
            )

    def _note_annotations(self, item: mcp_types.Tool) -> None:
        """Log a tool whose annotations changed since the last listing: a server that
        turns a tool "read-only" later may be trying to slip past the confirmation."""
        now = item.annotations.model_dump(exclude_none=True) if item.annotations else {}
        before = self._annotations.get(item.name)
        self._annotations[item.name] = now
        if before is None or before == now:
            return
        read_only = self.config.is_read_only(item.name, item.annotations)
        log.warning(
            "MCP server %s changed the annotations of tool %s from %s to %s; "
            "it is %s by the operator's rules",
            self.config.name,
            item.name,
            json.dumps(before, sort_keys=True),
            json.dumps(now, sort_keys=True),
            "read-only" if read_only else "side-effecting",
        )

    def _tool(self, public: str, item: mcp_types.Tool) -> Tool:
        read_only = self.config.is_read_only(item.name, item.annotations)
        confirm = self.config.confirm
        side_effect = confirm == "always" or (confirm == "unless_read_only" and not read_only)
        remote = item.name

        async def call(params: SchemaArguments, ctx: ToolContext) -> str:
            return await self.call(remote, params.model_dump(), ask=ctx.ask, report=ctx.report)

        description = item.description or item.title or remote
        return schema_tool(
            name=public,
            description=f"{description}\n(MCP tool {remote!r} of server {self.config.name!r})",
            schema=dict(item.input_schema or {}),
            function=call,
            source=self.config.source,
            side_effect=side_effect,
            timeout=self.config.call_timeout,
            hard_timeout=max(self._hard_timeout, self.config.call_timeout),
            card=lambda params: mcp_card(self.config.name, remote, params.model_dump()),
            outside=self.config.reads_outside(item.annotations),
            changes=not read_only,
        )

    async def _changed_state(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _announces_changes(client: Client) -> bool:
    """Whether the server advertises `tools.listChanged: true` (only then is it subscribed)."""
    tools = client.server_capabilities.tools
    return bool(tools is not None and tools.list_changed)
