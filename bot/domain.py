"""Platform-neutral value types that flow through a turn.

Adapters build these from platform payloads; the engine, the storage and the tools
see nothing else. They are plain frozen dataclasses: cheap to make, easy to compare.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from bot.links import inspect_link


class ChatKind(enum.StrEnum):
    DM = "dm"
    GROUP = "group"
    CHANNEL = "channel"


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True, slots=True)
class UserRef:
    """A person on a platform: `platform_user_id` is the platform's own id; `language`
    the language tag their chat app reports ("zh-CN", "en"; "" when it says none)."""

    platform: str
    platform_user_id: str
    display_name: str = ""
    language: str = field(default="", compare=False)

    @property
    def qualified_id(self) -> str:
        return f"{self.platform}:{self.platform_user_id}"


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A conversation place on a platform: a DM, a group or a channel."""

    platform: str
    platform_chat_id: str
    kind: ChatKind = ChatKind.DM
    title: str = ""


class AttachmentKind(enum.StrEnum):
    AUDIO = "audio"  # a voice note or an audio file: transcribed into the turn's text
    IMAGE = "image"  # a photo or an image file: shown to a vision-capable model


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that came with a message.

    The adapter fills in what the platform declares (`media_type`, `size`,
    `duration_seconds`, `name`) before downloading, so limits can be checked first; after
    the download `data` holds the bytes. The declared media type is a hint: the core
    checks the bytes themselves (bot/turn/media.py). Never stored, never logged.
    """

    kind: AttachmentKind
    media_type: str = ""
    data: bytes = field(default=b"", repr=False)
    name: str = ""
    size: int = 0
    duration_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image for the model, in the user message of the turn in progress only: its
    `media_type` was checked against the bytes."""

    media_type: str
    data: bytes = field(repr=False)


class ContextOrigin(enum.StrEnum):
    """Where words beside the requester's own came from (none of them is the requester)."""

    QUOTED = "quoted"  # the message the request replies to (or quotes)
    FORWARDED = "forwarded"  # a message the requester forwarded: its origin's words
    THREAD = "thread"  # an earlier message of the thread the request is in
    GROUP = "group"  # a message of the group the bot observed, not addressed to it


@dataclass(frozen=True, slots=True)
class ContextPart:
    """A message that comes with a request, as data: never the requester's words, whoever
    wrote it (`author_id` "" when unknown; `by_bot`: Parley itself wrote it)."""

    origin: ContextOrigin
    text: str
    author: str = ""
    author_id: str = ""
    by_bot: bool = False


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """One message from a chat that may start a turn.

    `thread_key` separates contexts inside one chat (Slack thread_ts, Telegram topic id)
    and is empty where the platform has none. `event_id` is what deduplication keys on.
    `attachments` are the voice notes and pictures that came with it (`text` is then
    the caption, possibly empty); `context` other people's messages that come with it.
    """

    chat: ChatRef
    user: UserRef
    text: str
    thread_key: str = ""
    platform_message_id: str = ""
    addressed: bool = True
    event_id: str = ""
    attachments: tuple[Attachment, ...] = ()
    context: tuple[ContextPart, ...] = ()

    @property
    def platform(self) -> str:
        return self.chat.platform


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model asked for.

    `arguments` is the parsed JSON object, or None when the model sent something that is
    not a JSON object; then `arguments_error` says why and `raw_arguments` keeps the text.
    """

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str = ""
    arguments_error: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call produced, as the model will read it."""

    call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True, slots=True)
class VendorState:
    """Opaque state a vendor wants back with the assistant message it belongs to.

    Thinking models return reasoning that must travel with their next request
    (DeepSeek's `reasoning_content` after a tool round, Anthropic's signed thinking
    blocks, Gemini's thought signatures). Only the provider that wrote it reads it:
    `vendor` is that provider's key (its profile name, or "anthropic", for the provider
    of the single-provider settings; "@<name>" for a table of PARLEY_PROVIDERS_FILE), and
    every other provider ignores it. `data` is JSON-serialisable and never shown to anyone; per-call
    entries are keyed by the call's position in `ChatMessage.tool_calls`, never by id.
    """

    vendor: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One entry of a conversation as sent to a model (vendor-neutral).

    `vendor_state` is set on assistant messages whose vendor returned reasoning state.
    `images` only ever travel on the user message of the turn in progress: history keeps
    the text ("[image]" and the caption), never the bytes.
    """

    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""
    is_error: bool = False
    vendor_state: VendorState | None = None
    images: tuple[ImagePart, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


# -- Services tools use ---------------------------------------------------------------
#
# A tool may import only bot.toolkit, bot.domain and bot.errors, yet some tools need the
# database, the scheduler or SMTP. The seam: each need is a small protocol here, the
# composition root (bot/app.py) puts implementations in a `ToolServices`, the engine
# hands it to every call as `ToolContext.services`. A missing service is None, and the
# tool says so to the model.

ReminderKind = Literal["message", "follow_up"]
Recurrence = Literal["none", "daily", "weekdays", "weekly", "cron"]
ReminderStatus = Literal["pending", "delivered", "cancelled", "failed"]


@dataclass(frozen=True, slots=True)
class ReminderRequest:
    """A reminder to store: `due_at` is aware (any zone); `cron` is in `timezone`."""

    user: UserRef
    chat: ChatRef
    thread_key: str
    kind: ReminderKind
    text: str
    due_at: datetime
    timezone: str
    recurrence: Recurrence = "none"
    cron: str = ""


@dataclass(frozen=True, slots=True)
class ReminderInfo:
    """A stored reminder as tools and the CLI show it."""

    id: int
    kind: ReminderKind
    text: str
    due_at: datetime
    timezone: str
    recurrence: Recurrence
    cron: str
    status: ReminderStatus
    attempts: int = 0
    last_error: str = ""
    delivered_at: datetime | None = None
    owner: str = ""


class ReminderBook(Protocol):
    """Creates, lists and cancels reminders (bot.reminders.ReminderBook)."""

    async def create(self, request: ReminderRequest) -> ReminderInfo: ...

    async def list_for(
        self, user: UserRef, *, include_done: bool = False, chat: ChatRef | None = None
    ) -> list[ReminderInfo]:
        """The user's reminders; with `chat`, only those that deliver there."""
        ...

    async def cancel(self, user: UserRef, reminder_id: int) -> bool: ...


class Mailer(Protocol):
    """Sends a plain-text email from the configured sender and records it (bot.ops.mail)."""

    def refusal(self, recipients: Sequence[str]) -> str | None:
        """Why these recipients may not be written to (not configured, not allowed), if so."""
        ...

    async def send(
        self, requester: UserRef, chat: ChatRef, to: Sequence[str], subject: str, body: str
    ) -> MailReceipt:
        """Send and record; returns what became of each recipient. Raises ToolError with a
        readable reason (and the failure's class for the model) when nobody got it."""
        ...


@dataclass(frozen=True, slots=True)
class MailReceipt:
    """An email the server took: its Message-ID, who it was accepted for, the recipients
    it refused with the server's reason ("550 5.1.1 mailbox unknown"), and `note`, what
    people are told of the refusals (in the asker's language; empty when there were none)."""

    message_id: str
    sent_to: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    note: str = ""


class WeatherSource(Protocol):
    """Current conditions and a daily forecast (tools.weather.OpenMeteo)."""

    async def report(
        self,
        *,
        place: str | None,
        country: str | None,
        latitude: float | None,
        longitude: float | None,
        days: int,
        units: Literal["metric", "imperial"],
    ) -> dict[str, Any]: ...


class TimezoneBook(Protocol):
    """Stores a user's timezone (bot.storage.ConversationStore)."""

    async def set_timezone(self, user: UserRef, timezone: str) -> None: ...


class MemoryScope(enum.StrEnum):
    """Where a remembered fact may be offered to the model: in the user's private chats
    only, or also in groups and channels the user talks in."""

    PRIVATE = "private"
    EVERYWHERE = "everywhere"


@dataclass(frozen=True, slots=True)
class MemoryFact:
    """Something a user asked Parley to remember (across their chats)."""

    id: int
    text: str
    scope: MemoryScope
    created_at: datetime


class MemoryBook(Protocol):
    """A user's remembered facts (bot.storage.memory.MemoryStore)."""

    async def remember(
        self, user: UserRef, chat: ChatRef, text: str, scope: MemoryScope
    ) -> MemoryFact:
        """Store a fact; raises ToolError when the user holds the most facts allowed."""
        ...

    async def facts_for(self, user: UserRef, chat: ChatRef) -> list[MemoryFact]:
        """The user's facts that may be shown in `chat` (private ones only in a DM)."""
        ...

    async def forget(self, user: UserRef, chat: ChatRef, fact_id: int | None) -> int:
        """Delete one fact (or, with None, every fact visible in `chat`); how many went."""
        ...


@dataclass(frozen=True, slots=True)
class ToolServices:
    """What the composition root gives tools; None where a service is not configured."""

    reminders: ReminderBook | None = None
    mailer: Mailer | None = None
    weather: WeatherSource | None = None
    timezones: TimezoneBook | None = None
    memory: MemoryBook | None = None


class InputFieldKind(enum.StrEnum):
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"


# A value a user gives a form: what goes back to the tool (a multi-choice: its values).
InputValue = str | int | float | bool | list[str]


@dataclass(frozen=True, slots=True)
class InputChoice:
    """One option of a choice: `value` goes back to the tool, `title` (or the value,
    when there is none) is what the user sees."""

    value: str
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.value


@dataclass(frozen=True, slots=True)
class InputLimits:
    """What a value must meet before it goes back (None or empty: no such limit).
    Lengths count characters; `format` is email, uri, date or date-time; `minimum` and
    `maximum` bound a number; `min_items` and `max_items` a multi-choice."""

    min_length: int | None = None
    max_length: int | None = None
    pattern: str = ""
    format: str = ""
    minimum: int | float | None = None
    maximum: int | float | None = None
    min_items: int | None = None
    max_items: int | None = None


@dataclass(frozen=True, slots=True)
class InputField:
    """One value a tool asks the user for: a typed reply (text, number, integer) or a
    press (boolean: yes/no; choice: one of `choices`; multi-choice: several, toggled),
    with the value offered to keep (`default`) and the `limits` it must meet."""

    name: str
    label: str
    kind: InputFieldKind = InputFieldKind.TEXT
    required: bool = True
    choices: tuple[InputChoice, ...] = ()
    description: str = ""
    default: InputValue | None = None
    limits: InputLimits = field(default_factory=InputLimits)


@dataclass(frozen=True, slots=True)
class InputQuestion:
    """A tool's question to the person who asked for the call (an MCP server's
    elicitation): a form of `fields`, or, with `url`, a link to open (URL mode)."""

    message: str
    fields: tuple[InputField, ...] = ()
    url: str = ""
    # Who wants to know: a catalog message id (`N_("MCP server {name}")`), translated
    # where shown, with `{name}` filled from `source`.
    asked_by: str = ""
    source: str = ""

    @property
    def domain(self) -> str:
        """The host a browser would open for the link (ASCII), "" for none or one that
        cannot be opened: shown, so nobody follows a link blindly."""
        link = inspect_link(self.url) if self.url else None
        return link.host if link is not None and link.ok else ""


class InputAction(enum.StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class InputAnswer:
    """What the user did with an `InputQuestion`: accepted (with the form's `values`),
    declined, or cancelled (also: nobody answered in time)."""

    action: InputAction
    values: dict[str, InputValue] = field(default_factory=dict)


Asker = Callable[[InputQuestion], Awaitable[InputAnswer]]


@dataclass(frozen=True, slots=True)
class ToolProgress:
    """A running call's report of how far it is: `progress` of `total` (either may be
    unknown) and what it is doing (`message`, the tool's own words, untrusted)."""

    progress: float | None = None
    total: float | None = None
    message: str = ""


ProgressReporter = Callable[[ToolProgress], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What a tool knows about the call: who asked, where, and when in their timezone.

    `thread_key` is where answers to this turn go; `services` are the tools' dependencies.
    """

    user: UserRef
    chat: ChatRef
    timezone: str
    now: datetime
    conversation_id: int | None = None
    thread_key: str = ""
    services: ToolServices = field(default_factory=ToolServices)
    # Asks the user who started the turn a question (None: nobody to ask, e.g. a
    # scheduled follow-up); bound to that user and chat by the engine.
    ask: Asker | None = None
    # Tells the chat how far the call is; each report also restarts the call's timeout
    # (up to the tool's `hard_timeout`). Bound to this one call by the engine.
    report: ProgressReporter | None = None
