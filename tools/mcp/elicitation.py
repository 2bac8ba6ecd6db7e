"""An MCP server's request for user input (elicitation), put to the person who asked.

The SDK calls `Elicitation.answer` for both eras: a handshake-era server's
`elicitation/create` request, and each input request of a 2026-07-28
`InputRequiredResult` (whose opaque `requestState` the SDK echoes back unchanged on the
retry of the same call). Which person is asked is bound to the call: `MCPServerLink.call`
sets the call's asker (from its `ToolContext`) for the duration of `call_tool`, so the
question goes to the user and chat of that turn and nobody else. A handshake-era request
arrives outside the call's task; it goes to the one call of that server in flight, and
is cancelled when there are several (it cannot be told whose it is) or none.

`input_question` reads the restricted schema of a form (a flat object of primitives):
strings (lengths, `pattern`, `format`), numbers and integers (`minimum`, `maximum`),
booleans, single-select (`enum`, titled by `enumNames`, or `oneOf` of `{const, title}`)
and multi-select (`type: array` whose `items` are such an enum or `anyOf`, with
`minItems`/`maxItems`), each with its `default`. Everything is bounded, since a server may
send anything: MAX_FIELDS fields, MAX_CHOICES choices, lengths of texts, values that must
go back unchanged left out rather than cut. The core checks answers (bot/approvals/forms.py).

`links_required` answers a call refused with -32042 (URL elicitation required, the
2025-11-25 protocol): its links are put to the user as URL-mode questions, and the
caller retries the call once when all were done.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import itertools
import logging
import math
from collections.abc import Iterator
from typing import Any

import mcp_types
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import UrlElicitationRequiredError

from bot.domain import (
    Asker,
    InputAction,
    InputChoice,
    InputField,
    InputFieldKind,
    InputLimits,
    InputQuestion,
)
from bot.toolkit import N_

log = logging.getLogger(__name__)

_call_asker: contextvars.ContextVar[Asker | None] = contextvars.ContextVar(
    "mcp_call_asker", default=None
)
MAX_FIELDS = 20
MAX_LINKS = 3  # links one URL-required error may ask the user to open
MAX_CHOICES = 20  # what fits a platform's buttons beside Skip, Keep, Decline and Cancel
MAX_TEXT = 1000  # a message or a description
MAX_LABEL = 100  # a field's or a choice's title
MAX_VALUE = 500  # a value that must go back unchanged (a choice's, a default's, a name)
MAX_LENGTH = 100_000  # a length bound a server may set
_FORMATS = ("email", "uri", "date", "date-time")


class Unaskable(ValueError):
    """A form with a required field of a kind the restricted schema does not have."""


def input_question(server: str, params: mcp_types.ElicitRequestParams) -> InputQuestion:
    """The server's request as a neutral question (bounded: a server may send anything).

    Raises `Unaskable` when a required field cannot be asked; an optional one that
    cannot is left out."""
    asked_by = N_("MCP server {name}")
    message = _text(params.message, MAX_TEXT)
    if isinstance(params, mcp_types.ElicitRequestURLParams):
        # The link unchanged: the core refuses one it must not show (bot/links.py).
        return InputQuestion(message, url=params.url, asked_by=asked_by, source=server)
    schema: Any = params.requested_schema
    properties = schema.get("properties") if isinstance(schema, dict) else None
    properties = properties if isinstance(properties, dict) else {}
    required_names = schema.get("required") if isinstance(schema, dict) else None
    required = set(required_names) if isinstance(required_names, list) else set()
    fields: list[InputField] = []
    for name, spec in itertools.islice(properties.items(), MAX_FIELDS):
        field = _field(name, spec, name in required) if isinstance(spec, dict) else None
        if field is not None:
            fields.append(field)
        elif name in required:
            raise Unaskable(f"the required field {name[:MAX_LABEL]!r} is not of a kind to ask")
    if len(properties) > MAX_FIELDS:
        cut = [name for name in list(properties)[MAX_FIELDS:] if name in required]
        if cut:
            raise Unaskable(f"more than {MAX_FIELDS} fields, some required")
        log.info("MCP server %s asked more than %d fields; the rest left out", server, MAX_FIELDS)
    return InputQuestion(message, fields=tuple(fields), asked_by=asked_by, source=server)


def _field(name: str, spec: dict[str, Any], required: bool) -> InputField | None:
    """One property of the restricted schema as a field, or None for one it lacks."""
    if len(name) > MAX_VALUE:
        return None
    label = _text(spec.get("title") or name, MAX_LABEL)
    description = _text(spec.get("description") or "", MAX_TEXT)
    kind, choices = _kind(spec)
    if kind is None:
        return None
    limits = InputLimits(
        min_length=_count(spec.get("minLength")),
        max_length=_count(spec.get("maxLength")),
        pattern=spec["pattern"] if isinstance(spec.get("pattern"), str) else "",
        format=spec["format"] if spec.get("format") in _FORMATS else "",
        minimum=_number(spec.get("minimum")),
        maximum=_number(spec.get("maximum")),
        min_items=_count(spec.get("minItems")),
        max_items=_count(spec.get("maxItems")),
    )
    field = InputField(name, label, kind, required, choices, description, limits=limits)
    default = spec.get("default")
    if default is not None and _fits(field, default):
        field = dataclasses.replace(field, default=default)
    return field


def _kind(spec: dict[str, Any]) -> tuple[InputFieldKind | None, tuple[InputChoice, ...]]:
    kind = spec.get("type")
    if kind == "array":
        items = spec.get("items")
        choices = _choices(items) if isinstance(items, dict) else ()
        return (InputFieldKind.MULTI_CHOICE if choices else None), choices
    choices = _choices(spec)
    if choices and kind in ("string", None):
        return InputFieldKind.CHOICE, choices
    simple = {
        "string": InputFieldKind.TEXT,
        "boolean": InputFieldKind.BOOLEAN,
        "integer": InputFieldKind.INTEGER,
        "number": InputFieldKind.NUMBER,
    }
    return simple.get(kind) if isinstance(kind, str) else None, ()


def _choices(spec: dict[str, Any]) -> tuple[InputChoice, ...]:
    """Titled (`oneOf`/`anyOf` of `{const, title}`, or `enum` with `enumNames`) or
    untitled (`enum`) options; values that are not strings, or too long to send back
    whole, are left out."""
    titled = spec.get("oneOf") or spec.get("anyOf")
    pairs: list[tuple[Any, Any]] = []
    if isinstance(titled, list):
        pairs = [(o.get("const"), o.get("title")) for o in titled if isinstance(o, dict)]
    elif isinstance(spec.get("enum"), list):
        names = spec.get("enumNames")
        names = names if isinstance(names, list) and len(names) == len(spec["enum"]) else []
        pairs = list(itertools.zip_longest(spec["enum"], names))
    choices = [
        InputChoice(value, _text(title, MAX_LABEL) if isinstance(title, str) else "")
        for value, title in pairs
        if isinstance(value, str) and len(value) <= MAX_VALUE
    ]
    if len(choices) > MAX_CHOICES:
        log.info("a form offered %d choices; the first %d are shown", len(choices), MAX_CHOICES)
    return tuple(choices[:MAX_CHOICES])


def _fits(field: InputField, default: Any) -> bool:
    """A server's default of the field's kind (one that breaks the limits is offered,
    and checked like any value when kept)."""
    values = {choice.value for choice in field.choices}
    if field.kind is InputFieldKind.MULTI_CHOICE:
        return isinstance(default, list) and all(item in values for item in default)
    if field.kind is InputFieldKind.CHOICE:
        return default in values
    if field.kind is InputFieldKind.BOOLEAN:
        return isinstance(default, bool)
    if field.kind is InputFieldKind.INTEGER:
        return isinstance(default, int) and not isinstance(default, bool)
    if field.kind is InputFieldKind.NUMBER:
        return _number(default) is not None
    return isinstance(default, str) and len(default) <= MAX_VALUE


def _text(value: Any, limit: int) -> str:
    return str(value)[:limit]


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_LENGTH:
        return value
    return None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) and abs(value) < 1e300 else None


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
        try:
            question = input_question(self.server, params)
        except Unaskable as exc:
            log.warning(
                "MCP server %s asked a form that cannot be asked (%s); cancelled", self.server, exc
            )
            return mcp_types.ElicitResult(action="cancel")
        answer = await ask(question)
        log.info("MCP server %s asked for input: %s", self.server, answer.action)
        if answer.action is InputAction.ACCEPT and not isinstance(
            params, mcp_types.ElicitRequestURLParams
        ):
            return mcp_types.ElicitResult(action="accept", content=dict(answer.values))
        return mcp_types.ElicitResult(action=answer.action.value)

    async def links_required(self, error: mcp_types.ErrorData, ask: Asker | None) -> str:
        """A call refused with -32042 (URL elicitation required, 2025-11-25): each link
        the server names put to the user as a URL-mode question, one after another.
        "" when every one was done (the call may be retried), else what became of them,
        for the model."""
        try:
            links = UrlElicitationRequiredError.from_error(error).elicitations
        except ValueError as exc:  # pydantic's ValidationError is one
            log.warning(
                "MCP server %s required links it did not name properly: %s", self.server, exc
            )
            return "the server did not name the link properly"
        if not links or len(links) > MAX_LINKS or ask is None:
            log.info(
                "MCP server %s required %d links (at most %d are asked) with %s; cancelled",
                self.server,
                len(links),
                MAX_LINKS,
                "someone to ask" if ask else "nobody to ask",
            )
            return "there was nobody to ask" if ask is None else "it named too many links"
        for params in links:
            question = input_question(self.server, params)
            if not question.domain:  # the core declines it unshown, and logs why
                return "its link was refused as unsafe to show (only plain https links are)"
            answer = await ask(question)
            log.info("MCP server %s required a link: %s", self.server, answer.action)
            if answer.action is InputAction.DECLINE:
                return "the user declined that"
            if answer.action is not InputAction.ACCEPT:
                return "the user did not finish that"
        return ""
