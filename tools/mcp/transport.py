"""How Parley reaches an MCP server, and how it introduces itself.

- `CLIENT_INFO`: the client's name and version sent to every server ("parley" and the
  installed distribution's version), not the SDK's "mcp 0.1.0".
- `stdio_transport`: a stdio server whose stderr goes to the log (logger
  `tools.mcp.stderr`, one record per line, each bounded, at most `MAX_STDERR_LINES` per
  connection) and to a short tail kept for the doctor, never to Parley's own terminal,
  where `parley chat` talks to its user.
- `http_transport`: streamable HTTP whose every request carries the configured headers,
  and whose session is ended (DELETE) unless the server already forgot it.
- `quiet_sdk_tracebacks`: the SDK logs some failures with a traceback; they become one
  line (the traceback only at DEBUG), so none prints into a terminal chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any

import httpx2
import mcp_types
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

log = logging.getLogger("tools.mcp")
stderr_log = logging.getLogger("tools.mcp.stderr")

MAX_STDERR_LINE = 500  # characters of one stderr line that reach the log
MAX_STDERR_LINES = 1000  # lines per connection; a chatty server is cut off after these
STDERR_TAIL = 20  # last lines kept for the doctor and for errors
STDERR_CHUNK = 4096
MAX_SDK_LINE = 300  # characters of one SDK log record
SESSION_END_SECONDS = 5.0


def _parley_version() -> str:
    try:
        return version("parley")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


CLIENT_INFO = mcp_types.Implementation(name="parley", version=_parley_version())


class StderrTail:
    """The last lines a stdio server wrote to its stderr (bounded)."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=STDERR_TAIL)


@contextlib.asynccontextmanager
async def stdio_transport(
    server: str, params: StdioServerParameters, tail: StderrTail
) -> AsyncIterator[Any]:
    """The SDK's stdio transport with the child's stderr on a pipe that is read into the
    log. The pipe closes with the connection; a grandchild that keeps it open is not
    waited for."""
    read_fd, write_fd = os.pipe()
    reader = asyncio.create_task(_read_stderr(server, read_fd, tail))
    errlog: IO[str] = os.fdopen(write_fd, "w")
    try:
        async with stdio_client(params, errlog=errlog) as streams:  # type: ignore[arg-type]
            errlog.close()  # the child holds its own copy: EOF comes when it exits
            yield streams
    finally:
        errlog.close()
        try:
            await asyncio.wait_for(asyncio.shield(reader), 1.0)
        except TimeoutError:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _read_stderr(server: str, fd: int, tail: StderrTail) -> None:
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader(limit=STDERR_CHUNK * 4)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(fd, "rb")
    )
    logged = 0
    pending = b""
    try:
        while chunk := await stream.read(STDERR_CHUNK):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_STDERR_LINE * 4:  # a line without end: cut it here
                lines.append(pending)
                pending = b""
            for raw in lines:
                logged = _log_line(server, raw, tail, logged)
        if pending:
            _log_line(server, pending, tail, logged)
    finally:
        transport.close()


def _log_line(server: str, raw: bytes, tail: StderrTail, logged: int) -> int:
    line = raw.decode("utf-8", "replace").rstrip()
    if not line:
        return logged
    if len(line) > MAX_STDERR_LINE:
        line = line[:MAX_STDERR_LINE] + "…"
    tail.lines.append(line)
    if logged < MAX_STDERR_LINES:
        stderr_log.info("MCP server %s: %s", server, line)
    elif logged == MAX_STDERR_LINES:
        stderr_log.info("MCP server %s: more stderr output is not logged", server)
    return logged + 1


@dataclass
class HTTPSession:
    """How one HTTP connection's session ends: with a DELETE (the spec's polite goodbye)
    unless the server already forgot it (`end` cleared), in the negotiated version."""

    end: bool = True
    protocol_version: str = ""
    session_id: str = field(default="", repr=False)


@contextlib.asynccontextmanager
async def http_transport(
    url: str, headers: dict[str, str], session: HTTPSession
) -> AsyncIterator[Any]:
    """A streamable HTTP transport whose every request carries `headers` (the SDK's own
    HTTP client settings otherwise), closed with the connection. The session is ended
    here rather than by the SDK, which would warn (into a terminal chat) when a server
    that forgot it refuses the goodbye."""

    async def remember(response: httpx2.Response) -> None:
        if issued := response.headers.get("mcp-session-id"):
            session.session_id = issued

    async with create_mcp_http_client(headers=headers) as http:
        http.event_hooks["response"].append(remember)
        try:
            async with streamable_http_client(url, http_client=http, terminate_on_close=False) as s:
                yield s
        finally:
            if session.end and session.session_id:
                await _end_session(http, url, session)


async def _end_session(http: httpx2.AsyncClient, url: str, session: HTTPSession) -> None:
    ending = {"mcp-session-id": session.session_id}
    if session.protocol_version:
        ending["mcp-protocol-version"] = session.protocol_version
    try:
        response = await http.delete(url, headers=ending, timeout=SESSION_END_SECONDS)
    except httpx2.HTTPError as exc:
        log.debug("ending the MCP session at %s failed: %s", url, exc)
        return
    if response.status_code not in (200, 202, 204, 404, 405):
        log.info("ending the MCP session at %s: HTTP %d", url, response.status_code)


class _OneLineTracebacks(logging.Filter):
    """Makes an SDK record one bounded line: its traceback goes to DEBUG, the exception's
    text is squeezed into the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            log.debug("the MCP SDK logged: %s", text, exc_info=record.exc_info)
            text = f"{text} ({type(error).__name__}: {error})"
            record.exc_info = None
            record.exc_text = None
        line = " ".join(text.split())
        record.msg = line if len(line) <= MAX_SDK_LINE else line[:MAX_SDK_LINE] + "…"
        record.args = None
        return True


_ONE_LINE = _OneLineTracebacks()


def quiet_sdk_tracebacks() -> None:
    """Put the one-line filter on every logger of the SDK (they exist once it is imported;
    a logger's filters do not reach its children, so each gets it)."""
    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] == "mcp"]
    for name in ["mcp", *names]:
        logger = logging.getLogger(name)
        if _ONE_LINE not in logger.filters:
            logger.addFilter(_ONE_LINE)
