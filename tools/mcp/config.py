"""The MCP servers file (`PARLEY_MCP_CONFIG`, JSON or TOML) and the public names of
servers' tools. See tools/mcp/__init__.py for what each key means."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mcp_types

from bot.errors import ConfigError

SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
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

    def reads_outside(self, annotations: mcp_types.ToolAnnotations | None) -> bool:
        """Whether a tool's results may carry words from outside: every result of an
        untrusted server; a trusted server's unless it says its tool is a closed world
        (`openWorldHint: false`; MCP's default is an open world)."""
        if not self.trusted:
            return True
        return not (annotations is not None and annotations.open_world_hint is False)

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
