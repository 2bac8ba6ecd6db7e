"""MCP servers' tools as Parley tools, through the official `mcp` SDK (v2 `Client`).

Servers are listed in a JSON or TOML file (`PARLEY_MCP_CONFIG`)::

    {
        "servers": {
            "files": {
                "command": "npx",
                "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"],
                "env": {"DEBUG": "0"},
                "allowed_tools": ["read_file", "list_directory"],
            },
            "search": {
                "url": "http://127.0.0.1:9000/mcp",
                "bearer_token_env": "SEARCH_MCP_TOKEN",
                "headers": {"X-Tenant": "${SEARCH_TENANT}"},
            },
        }
    }

(`mcpServers` is accepted for `servers`, as in other MCP clients' files.) Per server:
`command`+`args`+`env`+`cwd` (stdio subprocess) or `url`+`headers` (streamable HTTP;
`${VAR}` in a header is the environment variable's value, `bearer_token_env: NAME` sends
`Authorization: Bearer <$NAME>`; header values are secrets: `secrets()` gives them to the
log redaction, and they are never logged);
`allowed_tools` (absent: all; a tool not listed is never registered, so never offered);
`call_timeout` seconds; `confirm`: "unless_read_only" (default: a tool that is not
read-only by the operator's rules asks the user first), "always" or "never".

A server is untrusted unless the operator says otherwise: `trusted: true` (its tools'
`readOnlyHint` annotations are believed) or `read_only_tools: [...]` (exactly these are
read-only). An untrusted server's annotations are the server's claims, not facts: each
of its tools counts as side-effecting, so it is confirmed before it runs and "all" in the
channel defaults does not switch it on. A tool whose annotations change when the list is
refreshed is logged (warning) and still judged by these rules only.

Each server is one `MCPServerLink`, a task that connects, lists the tools (all pages),
registers them in the `ToolRegistry` as `<server>_<tool>` (the namespaced `server.tool`
sanitised to `^[a-zA-Z0-9_-]{1,64}$`, with a reverse map to the MCP name), refreshes them
when the server says its list changed, and restarts a server that dies with exponential
backoff. Meanwhile its tools stay registered and answer "unavailable" as an error
result; the other servers and the built-in tools are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mcp_types
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bot.domain import Asker, ToolContext
from bot.errors import ConfigError, ToolError
from bot.toolkit import (
    N_,
    ApprovalCard,
    SchemaArguments,
    Tool,
    ToolRegistry,
    argument_lines,
    schema_tool,
)
from tools.mcp_input import Elicitation
from tools.mcp_transport import (
    CLIENT_INFO,
    StderrTail,
    http_transport,
    quiet_sdk_tracebacks,
    stdio_transport,
)

log = logging.getLogger(__name__)

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
DAY = 86_400.0
SHORTEST_SECRET = 6  # shorter header values are not redacted (they would mangle the logs)
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
ConfirmMode = Literal["unless_read_only", "always", "never"]


@dataclass(frozen=True)
class MCPServerConfig:
    """One server of the configuration file."""

    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # resolved: secrets
    allowed_tools: frozenset[str] | None = None
    call_timeout: float = 60.0
    confirm: ConfirmMode = "unless_read_only"
    trusted: bool = False
    read_only_tools: frozenset[str] | None = None

    def is_read_only(self, tool: str, annotations: mcp_types.ToolAnnotations | None) -> bool:
        """Whether the operator's rules make `tool` read-only: listed in
        `read_only_tools`, or annotated read-only by a server marked trusted."""
        if self.read_only_tools is not None and tool in self.read_only_tools:
            return True
        return self.trusted and bool(annotations and annotations.read_only_hint)

    @property
    def source(self) -> str:
        return f"mcp:{self.name}"

    def secrets(self) -> dict[str, str]:
        """Header values as {value: what it is}, for the log redaction."""
        return {
            value: f"MCP server {self.name} header {header}"
            for header, value in self.headers.items()
            if len(value) >= SHORTEST_SECRET
        } | {
            value.removeprefix("Bearer "): f"MCP server {self.name} token"
            for value in self.headers.values()
            if value.startswith("Bearer ") and len(value) >= SHORTEST_SECRET + 7
        }


def load_config(
    path: str | Path, environ: Mapping[str, str] | None = None
) -> list[MCPServerConfig]:
    """Read the servers file (`.toml` is TOML, anything else JSON); `ConfigError` on error.
    Environment references (`${VAR}`, `bearer_token_env`) are read from `environ`
    (default: the process environment)."""
    path = Path(path)
    where = f"PARLEY_MCP_CONFIG={path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the file: {exc.strerror or exc}") from None
    try:
        data: Any = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{where}: not valid {'TOML' if path.suffix == '.toml' else 'JSON'}: {exc}"
        ) from None
    servers = data.get("servers", data.get("mcpServers")) if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f'{where}: expected a "servers" table of named servers')
    env = os.environ if environ is None else environ
    return [_server_config(where, name, entry, env) for name, entry in servers.items()]


def _server_config(
    where: str, name: str, entry: Any, environ: Mapping[str, str]
) -> MCPServerConfig:
    def bad(reason: str) -> ConfigError:
        return ConfigError(f"{where}: server {name!r}: {reason}")

    if not SERVER_NAME.match(name):
        raise bad(f"the name must match {SERVER_NAME.pattern}")
    if not isinstance(entry, dict):
        raise bad("must be a table/object")
    known = {
        "command",
        "args",
        "env",
        "cwd",
        "url",
        "headers",
        "allowed_tools",
        "call_timeout",
        "confirm",
        "trusted",
        "read_only_tools",
        "bearer_token_env",
    }
    if unknown := sorted(set(entry) - known):
        raise bad(f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    command, url = entry.get("command") or "", entry.get("url") or ""
    if bool(command) == bool(url):
        raise bad('give either "command" (stdio) or "url" (streamable HTTP)')
    if not isinstance(command, str) or not isinstance(url, str):
        raise bad('"command" and "url" must be strings')
    if url and not url.startswith(("http://", "https://")):
        raise bad(f'"url" must be http(s), got {url!r}')
    args, env, headers = entry.get("args", []), entry.get("env"), entry.get("headers", {})
    if not (isinstance(args, list) and all(isinstance(a, str) for a in args)):
        raise bad('"args" must be a list of strings')
    for label, mapping in (("env", env or {}), ("headers", headers)):
        if not (isinstance(mapping, dict) and all(isinstance(v, str) for v in mapping.values())):
            raise bad(f'"{label}" must map names to strings')
    headers = _resolved_headers(headers, entry.get("bearer_token_env"), environ, bad)
    if headers and not url:
        raise bad('"headers" and "bearer_token_env" are for "url" servers')
    allowed = entry.get("allowed_tools")
    if allowed is not None and not (
        isinstance(allowed, list) and all(isinstance(a, str) for a in allowed)
    ):
        raise bad('"allowed_tools" must be a list of tool names')
    read_only = entry.get("read_only_tools")
    if read_only is not None and not (
        isinstance(read_only, list) and all(isinstance(a, str) for a in read_only)
    ):
        raise bad('"read_only_tools" must be a list of tool names')
    trusted = entry.get("trusted", False)
    if not isinstance(trusted, bool):
        raise bad('"trusted" must be true or false')
    timeout = entry.get("call_timeout", 60.0)
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise bad('"call_timeout" must be a positive number of seconds')
    confirm = entry.get("confirm", "unless_read_only")
    if confirm not in ("unless_read_only", "always", "never"):
        raise bad('"confirm" must be "unless_read_only", "always" or "never"')
    return MCPServerConfig(
        name=name,
        command=command,
        args=tuple(args),
        env=dict(env) if env is not None else None,
        cwd=entry.get("cwd"),
        url=url,
        headers=dict(headers),
        allowed_tools=frozenset(allowed) if allowed is not None else None,
        call_timeout=float(timeout),
        confirm=confirm,
        trusted=trusted,
        read_only_tools=frozenset(read_only) if read_only is not None else None,
    )


def _resolved_headers(
    headers: dict[str, str],
    token_env: Any,
    environ: Mapping[str, str],
    bad: Any,
) -> dict[str, str]:
    """The headers with `${VAR}` filled from the environment, plus the bearer token."""

    def value_of(variable: str, what: str) -> str:
        value = environ.get(variable, "")
        if not value:
            raise bad(f"{what} names the environment variable {variable}, which is not set")
        return value

    resolved: dict[str, str] = {}
    for header, value in headers.items():
        what = f'header "{header}"'
        resolved[header] = ENV_REFERENCE.sub(
            lambda match, what=what: value_of(match.group(1), what),  # type: ignore[misc]
            value,
        )
    if token_env is not None:
        if not (isinstance(token_env, str) and ENV_REFERENCE.fullmatch(f"${{{token_env}}}")):
            raise bad('"bearer_token_env" must be the name of an environment variable')
        resolved["Authorization"] = f"Bearer {value_of(token_env, 'bearer_token_env')}"
    return resolved


def public_name(server: str, tool: str, taken: Iterable[str] = ()) -> str:
    """`server.tool` made acceptable to every vendor: `^[a-zA-Z0-9_-]{1,64}$`, unique."""
    base = _UNSAFE.sub("_", f"{server}.{tool}")
    if len(base) > 64:
        digest = hashlib.sha1(f"{server}.{tool}".encode(), usedforsecurity=False).hexdigest()
        base = f"{base[:55]}_{digest[:8]}"
    name, number, used = base, 2, set(taken)
    while name in used:
        suffix = f"_{number}"
        name, number = base[: 64 - len(suffix)] + suffix, number + 1
    return name


def mcp_card(server: str, tool: str, arguments: dict[str, Any]) -> ApprovalCard:
    """An MCP call as people read it: which server, which of its tools, which arguments."""
    return ApprovalCard(
        N_("Use a tool of an MCP server"),
        lines=((N_("Server"), server), (N_("Tool"), tool)),
        details=argument_lines(arguments),
    )


MAX_STRUCTURED_CHARS = 8000  # of a result's structured content shown to the model


def render_result(result: mcp_types.CallToolResult) -> str:
    """Text blocks joined, other blocks named, and the structured content as JSON after
    them (bounded; left out when the text already is that JSON)."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            parts.append(f"[{block.type}: {block.mime_type}]")
        elif isinstance(block, mcp_types.EmbeddedResource):
            resource = block.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource: {resource.uri}]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[link: {block.uri}]")
    text = "\n".join(part for part in parts if part)
    if result.structured_content is None or _is_json_of(text, result.structured_content):
        return text
    structured = json.dumps(result.structured_content, ensure_ascii=False)
    if len(structured) > MAX_STRUCTURED_CHARS:
        cut = len(structured) - MAX_STRUCTURED_CHARS
        structured = f"{structured[:MAX_STRUCTURED_CHARS]}… [cut: {cut} more characters]"
    if not text:
        return structured
    return f"{text}\n\nStructured content (JSON):\n{structured}"


def _is_json_of(text: str, value: Any) -> bool:
    """Whether `text` already says `value`: its JSON, or (a wrapped plain result, as
    `{"result": ...}`) the one value of a one-key object."""
    if isinstance(value, dict) and len(value) == 1:
        [inner] = value.values()
        if inner == text or (not isinstance(inner, str) and _is_json_of(text, inner)):
            return True
    try:
        return bool(json.loads(text) == value)
    except ValueError:
        return False


class MCPServerLink:
    """One configured server: its connection, its tools, and their restarts."""

    def __init__(
        self,
        config: MCPServerConfig,
        registry: ToolRegistry,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        ping_interval: float = 30.0,
        mode: str = "auto",
    ) -> None:
        self.config = config
        self._mode = mode  # the SDK's protocol choice: "auto", or "legacy" (handshake era)
        self.available = False
        self.last_error = ""
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
        self._annotations: dict[str, dict[str, Any]] = {}  # as last listed, per MCP name
        self.stderr = StderrTail()  # a stdio server's last stderr lines
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
            return _describe(exc)
        return ""

    async def stop(self) -> None:
        self._stop.set()
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
            return http_transport(self.config.url, self.config.headers)
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
                    self._broken.clear()
                    await self._refresh(client)
                    self.available = True
                    self.last_error = ""
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
                self.last_error = _describe(exc)
                if self.stderr.lines:
                    self.last_error += f"; its stderr last said: {self.stderr.lines[-1]}"
                log.debug("MCP server %s failed", self.config.name, exc_info=True)
            finally:
                self._client = None
                if self.available:
                    self.failures_after_listing += 1
                self.available = False
            self._listed.set()
            self._settled.set()
            if self._stop.is_set():
                return
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
                    async for _event in subscription:
                        self._refresh_wanted.set()
                # A graceful end of the stream (a server may close long-lived streams):
                # listen again; a dead server fails the new request and is restarted.
                self.subscribed = False
            except MCPError as exc:
                if _is_dead(exc):
                    raise
                log.info(
                    "MCP server %s refused the tool-list subscription (%s: %s); "
                    "listing its tools every %g s",
                    self.config.name,
                    exc.code,
                    exc.message[:200],
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
            return await self.call(remote, params.model_dump(), ask=ctx.ask)

        description = item.description or item.title or remote
        return schema_tool(
            name=public,
            description=f"{description}\n(MCP tool {remote!r} of server {self.config.name!r})",
            schema=dict(item.input_schema or {}),
            function=call,
            source=self.config.source,
            side_effect=side_effect,
            timeout=self.config.call_timeout,
            card=lambda params: mcp_card(self.config.name, remote, params.model_dump()),
        )

    async def call(self, name: str, arguments: dict[str, Any], ask: Asker | None = None) -> str:
        """Call a tool by its MCP name; failures raise `ToolError` (an error result). The
        server's questions during the call go to `ask` (the user whose turn it is)."""
        client = self._client
        if client is None or not self.available:
            detail = f" ({self.last_error})" if self.last_error else ""
            raise ToolError(
                f"the MCP server {self.config.name!r} is unavailable right now{detail}; "
                "it is being restarted, try again later"
            )
        try:
            with self._elicitation.calling(ask):
                # A handshake-era server asks mid-request: the user's answering time must
                # not time the request out. The tool's own timeout (paused while asking)
                # and the question's bound the call instead.
                result = await client.call_tool(name, arguments, read_timeout_seconds=DAY)
        except MCPError as exc:
            if "closed" in str(exc).lower():
                self._broken.set()
            raise ToolError(f"MCP server {self.config.name!r}: {exc}") from None
        except (OSError, EOFError) as exc:
            self._broken.set()
            raise ToolError(f"MCP server {self.config.name!r} connection failed: {exc}") from None
        text = render_result(result)
        if result.is_error:
            raise ToolError(text or "the tool reported an error")
        return text


def _announces_changes(client: Client) -> bool:
    """Whether the server advertises `tools.listChanged: true` (only then is it subscribed)."""
    tools = client.server_capabilities.tools
    return bool(tools is not None and tools.list_changed)


def _is_dead(exc: MCPError) -> bool:
    """Whether an error means the connection is gone (closed, or no answer in time), as
    opposed to the server's refusal of one request."""
    if exc.code == REQUEST_TIMEOUT:
        return True
    return exc.code == CONNECTION_CLOSED and "closed" in exc.message.lower()


def _describe(exc: BaseException) -> str:
    """The innermost cause of a failure (anyio wraps them in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


class MCPTools:
    """Every configured MCP server, started and stopped together."""

    def __init__(
        self,
        configs: Iterable[MCPServerConfig],
        registry: ToolRegistry,
        *,
        start_timeout: float = 10.0,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        self.links = [
            MCPServerLink(
                config, registry, initial_backoff=initial_backoff, max_backoff=max_backoff
            )
            for config in configs
        ]
        self._start_timeout = start_timeout
        quiet_sdk_tracebacks()

    async def start(self) -> None:
        """Connect to every server and wait (up to the start timeout) for their tools.

        A server that is down at start does not stop Parley: it keeps being retried."""
        for link in self.links:
            link.start()
        await asyncio.gather(*(link.wait_listed(self._start_timeout) for link in self.links))
        for link in self.links:
            if not link.available:
                log.warning(
                    "MCP server %s is not available (%s); retrying in the background",
                    link.config.name,
                    link.last_error or "no answer yet",
                )

    async def aclose(self) -> None:
        await asyncio.gather(*(link.stop() for link in self.links))

    def status(self) -> dict[str, bool]:
        return {link.config.name: link.available for link in self.links}
