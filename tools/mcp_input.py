"""An MCP server's request for user input (elicitation), put to the person who asked.

The SDK calls `Elicitation.answer` for both eras: a handshake-era server's
`elicitation/create` request, and each input request of a 2026-07-28
`InputRequiredResult` (whose opaque `requestState` the SDK echoes back unchanged on the
retry of the same call). Which person is asked is bound to the call: `MCPServerLink.call`
sets the call's asker (from its `ToolContext`) for the duration of `call_tool`, so the
question goes to the user and chat of that turn and nobody else. A handshake-era request
arrives outside the call's task; it goes to the one call of that server in flight, and
is cancelled when there are several (it cannot be told whose it is) or none.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import logging
from collections.abc import Iterator
from typing import Any

import mcp_types
from mcp.client.session import ClientRequestContext

from bot.domain import Asker, InputAction, InputField, InputFieldKind, InputQuestion
from bot.toolkit import N_

log = logging.getLogger(__name__)

_call_asker: contextvars.ContextVar[Asker | None] = contextvars.ContextVar(
    "mcp_call_asker", default=None
)
MAX_FIELDS = 20
MAX_TEXT = 1000
MAX_URL = 2000


def input_question(server: str, params: mcp_types.ElicitRequestParams) -> InputQuestion:
    """The server's request as a neutral question (bounded: a server may send anything)."""
    asked_by = N_("MCP server {name}")
    message = params.message[:MAX_TEXT]
    if isinstance(params, mcp_types.ElicitRequestURLParams):
        return InputQuestion(message, url=params.url[:MAX_URL], asked_by=asked_by, source=server)
    schema: dict[str, Any] = dict(params.requested_schema)
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    fields = [
        _field(name, spec, name in required)
        for name, spec in itertools.islice(properties.items(), MAX_FIELDS)
        if isinstance(spec, dict)
    ]
    return InputQuestion(message, fields=tuple(fields), asked_by=asked_by, source=server)


def _field(name: str, spec: dict[str, Any], required: bool) -> InputField:
    kind = InputFieldKind.TEXT
    choices: tuple[str, ...] = ()
    options = spec.get("enum") or [o.get("const") for o in spec.get("oneOf") or () if o]
    if options:
        kind, choices = InputFieldKind.CHOICE, tuple(str(o)[:100] for o in options[:20])
    elif spec.get("type") == "boolean":
        kind = InputFieldKind.BOOLEAN
    elif spec.get("type") == "integer":
        kind = InputFieldKind.INTEGER
    elif spec.get("type") == "number":
        kind = InputFieldKind.NUMBER
    label = str(spec.get("title") or name)[:100]
    description = str(spec.get("description") or "")[:MAX_TEXT]
    return InputField(name, label, kind, required, choices, description)


class Elicitation:
    """The elicitation callback of one server's `Client`."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._in_flight: dict[int, Asker | None] = {}
        self._ids = itertools.count()

    @contextlib.contextmanager
    def calling(self, ask: Asker | None) -> Iterator[None]:
        """Around one `call_tool`: its questions go to `ask`."""
        number = next(self._ids)
        self._in_flight[number] = ask
        token = _call_asker.set(ask)
        try:
            yield
        finally:
            _call_asker.reset(token)
            del self._in_flight[number]

    def _asker(self) -> Asker | None:
        ask = _call_asker.get()
        if ask is not None:
            return ask
        if len(self._in_flight) == 1:
            [only] = self._in_flight.values()
            return only
        return None

    async def answer(
        self, context: ClientRequestContext, params: mcp_types.ElicitRequestParams
    ) -> mcp_types.ElicitResult | mcp_types.ErrorData:
        ask = self._asker()
        if ask is None:
            log.info("MCP server %s asked for input with nobody to ask; cancelled", self.server)
            return mcp_types.ElicitResult(action="cancel")
        answer = await ask(input_question(self.server, params))
        log.info("MCP server %s asked for input: %s", self.server, answer.action)
        if answer.action is InputAction.ACCEPT and not isinstance(
            params, mcp_types.ElicitRequestURLParams
        ):
            return mcp_types.ElicitResult(action="accept", content=dict(answer.values))
        return mcp_types.ElicitResult(action=answer.action.value)
