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

Changes are learnt by subscription (`subscriptions/listen`) only from a 2026-07-28 server
that advertises `tools.listChanged` and accepts it; otherwise the tools are listed again
on a timer, which also notices a dead server. A call that times out is followed by a
ping: a server that does not answer it is restarted at once. An HTTP server that forgot
our session gets a new one and the call once more. Here: the file is read
by config.py; one server's connection and listing is link.py, its calls calls.py, all of
them together servers.py; results are rendered by results.py, servers reached through
transport.py, and their questions asked by elicitation.py.

The names below are loaded when first used: reading the file (`load_config`, as
`parley` does to redact the servers' secrets) does not import the MCP SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.mcp.config import MCPServerConfig, load_config, public_name
    from tools.mcp.elicitation import Elicitation, Unaskable, input_question
    from tools.mcp.link import MCPServerLink
    from tools.mcp.results import MAX_STRUCTURED_CHARS
    from tools.mcp.servers import MCPTools

_HOME = {
    "MAX_STRUCTURED_CHARS": "tools.mcp.results",
    "Elicitation": "tools.mcp.elicitation",
    "MCPServerConfig": "tools.mcp.config",
    "MCPServerLink": "tools.mcp.link",
    "MCPTools": "tools.mcp.servers",
    "Unaskable": "tools.mcp.elicitation",
    "input_question": "tools.mcp.elicitation",
    "load_config": "tools.mcp.config",
    "public_name": "tools.mcp.config",
}

__all__ = [
    "MAX_STRUCTURED_CHARS",
    "Elicitation",
    "MCPServerConfig",
    "MCPServerLink",
    "MCPTools",
    "Unaskable",
    "input_question",
    "load_config",
    "public_name",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
