"""`SlackSurface`: one turn's reply in a Slack thread.

A reply finished within `preview_delay` of its first text (most are) goes out whole in
one chat.postMessage, and "is thinking…" is shown only once a turn has been silent that
long, so a quick turn costs one Web API call. A longer reply streams through Slack's chat
streaming API (chat.startStream / appendStream / stopStream), sent by a background
flusher every `stream_interval` whether or not the model is still writing. When the API
refuses streaming the surface falls back to chat.postMessage plus chat.update at most
once per `update_interval`, and never sends an update whose text did not change. Answers
longer than one message are continued in a new message. Slack errors never escape: the
channel-level ones (`not_in_channel`, `channel_not_found`) are logged with what to do.

With `sessions` (Slack's agent features, integrations/slack/sessions.py) the thread's
session is "processing" while the turn runs and "active" once it answered, titled with
the first question; each tool call is a task in the stream (in progress, then complete
or error with a short output line), and the answer ends with feedback buttons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.approvals.questions import CANCEL, AskUser, InputStep, PendingInput
from bot.domain import (
    ChatKind,
    ChatRef,
    InputAction,
    InputAnswer,
    InputQuestion,
    ToolCall,
    ToolResult,
    UserRef,
)
from bot.i18n import N_, _
from bot.surface import NO_ANSWER, Answer, ApprovalPrompt
from integrations.slack.confirmations import approval_blocks, escape, input_blocks, note_blocks
from integrations.slack.convert import MESSAGE_LIMIT, cut_point, split_text
from integrations.slack.sessions import AgentSessions, TaskStatus, feedback_block, task_chunk
from integrations.slack.webapi import (
    CHANNEL_ERRORS,
    log_slack_error,
    markdown_blocks,
    slack_call,
    slack_error,
)

log = logging.getLogger(__name__)

INTERRUPTED = N_("(This answer was interrupted by a restart; it follows below.)")


class SlackSurface:
    """One turn's reply, in `thread_ts` of `channel`, for `user_id` of `team_id`."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        user_id: str,
        team_id: str,
        preview_delay: float,
        stream_interval: float,
        update_interval: float,
        message_limit: int = MESSAGE_LIMIT,
        on_preview: Callable[[str], Awaitable[None]] | None = None,
        preview_ts: str = "",
        ask_user: AskUser | None = None,
        sessions: AgentSessions | None = None,
        title: str = "",
    ) -> None:
        self.client = client
        self.ask_user = ask_user  # None: tools' questions are cancelled
        self.sessions = sessions
        self.title = title
        self.channel = channel
        self.thread_ts = thread_ts
        self.user_id = user_id
        self.team_id = team_id
        self.preview_delay = preview_delay
        self.stream_interval = stream_interval
        self.update_interval = update_interval
        self.message_limit = message_limit
        self.mode: Literal["stream", "update"] | None = None
        self.posted: list[str] = []  # ts of every message of this reply
        self._buffer = ""  # text not sent yet
        self._streamed: list[str] = []
        self._ts: str | None = None
        self._text = ""
        self._status_shown = False
        self._dead = False
        self._thinking: asyncio.TimerHandle | None = None
        self._thinking_call: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._stop_flusher = asyncio.Event()
        self._on_preview = on_preview
        # A resumed turn's message, half-written before a restart: replaced at start.
        self._stale_ts = preview_ts
        self._session_busy = False  # the agent session says "processing"
        self._feedback = False  # the message being closed is the answer: add the buttons
        self._tasks: dict[str, str] = {}  # call id -> its task's title
        self._opening = asyncio.Lock()

    # -- Surface -----------------------------------------------------------------------

    async def start(self) -> None:
        if self._stale_ts:
            stale, self._stale_ts = self._stale_ts, ""
            note = _(INTERRUPTED)
            await slack_call(
                "chat.update (interrupted answer)",
                self.client.chat_update(
                    channel=self.channel, ts=stale, text=note, blocks=markdown_blocks(note)
                ),
            )
        if self.preview_delay:
            loop = asyncio.get_running_loop()
            self._thinking = loop.call_later(self.preview_delay, self._think)
        else:
            await self._set_status(_("is thinking…"))

    async def stream(self, delta: str) -> None:
        self._streamed.append(delta)
        self._buffer += delta
        if self._flusher is None:
            if not self.preview_delay and self._ts is None:
                await self._flush(final=False)
            self._flusher = asyncio.create_task(self._flush_periodically())

    async def status(self, text: str) -> None:
        # Text written so far goes out first: the status belongs under it.
        await self._stop_background()
        await self._flush(final=False)
        # The engine says "Running get_current_time…"; Slack shows "<App> is running …".
        await self._set_status("is " + text[:1].lower() + text[1:] if text else "")

    async def thinking(self, delta: str) -> None:
        """Slack shows no reasoning: its status says the bot is working."""

    async def tool_started(self, call: ToolCall, progress: str) -> None:
        """A task in the stream with agent features; otherwise shown through `status`,
        which the engine calls once per round of tools."""
        if self.sessions is not None:
            self._tasks[call.id] = progress
            await self._task(task_chunk(call.id, progress, "in_progress"))

    async def tool_progress(self, call: ToolCall, progress: str) -> None:
        """The call's task, still in progress, says how far it is in its details."""
        title = self._tasks.get(call.id)
        if title is not None:
            await self._task(task_chunk(call.id, title, "in_progress", details=progress))

    async def tool_finished(self, call: ToolCall, result: ToolResult) -> None:
        """The call's task ends with a short output line; without agent features nothing
        shows: the answer that follows says what the tool found."""
        title = self._tasks.pop(call.id, None)
        if title is not None:
            status: TaskStatus = "error" if result.is_error else "complete"
            await self._task(task_chunk(call.id, title, status, output=result.content))

    async def finish(self, text: str) -> None:
        await self._stop_background()
        streamed = "".join(self._streamed)
        if text.startswith(streamed):
            self._buffer += text[len(streamed) :]
        if not self.posted and not self._buffer.strip():
            self._buffer = _(NO_ANSWER)
        self._feedback = self.sessions is not None
        await self._flush(final=True)
        self._feedback = False
        if self._status_shown or self._session_busy:
            await self._set_status("")

    async def fail(self, text: str) -> None:
        await self._stop_background()
        await self._flush(final=True)
        await self._post(text)
        if self._session_busy:
            await self._set_status("")

    async def confirm(self, user: UserRef, question: ApprovalPrompt) -> Answer:
        # Close the message being written so the rest of the answer follows the question.
        await self._stop_background()
        await self._flush(final=True)
        blocks = approval_blocks(question, user.platform_user_id)
        fallback = question.render(200).text.splitlines()[0]
        # Outside a DM only the asker sees the question (an ephemeral message; the press
        # that answers it replaces it through its response_url). A DM is theirs anyway,
        # and there a plain message can be updated when the question expires.
        in_dm = self.channel.startswith("D")
        response = await self._post_to_asker(user, fallback, blocks, "approval")
        if response is None:
            return Answer.DENIED  # nobody could be asked: nothing is done
        answer = await question.answer()
        if answer is Answer.EXPIRED:
            note = escape(answer.note(question.tool))
            if in_dm:
                await slack_call(
                    "chat.update (approval expired)",
                    self.client.chat_update(
                        channel=self.channel,
                        ts=str(response["ts"]),
                        text=note,
                        blocks=note_blocks(note),
                    ),
                )
            else:
                await slack_call(
                    "chat.postEphemeral (approval expired)",
                    self.client.chat_postEphemeral(
                        channel=self.channel,
                        user=user.platform_user_id,
                        thread_ts=self.thread_ts,
                        text=note,
                    ),
                )
        return answer

    async def ask(self, user: UserRef, question: InputQuestion) -> InputAnswer:
        await self._stop_background()
        await self._flush(final=True)
        if self.ask_user is None:
            return InputAnswer(InputAction.CANCEL)
        # As approvals: ephemeral for the asker outside a DM (a press replaces it through
        # its response_url); in a DM a message, whose buttons go when it is answered.
        in_dm = self.channel.startswith("D")
        chat = ChatRef("slack", self.channel, ChatKind.DM if in_dm else ChatKind.CHANNEL)
        posted: list[str] = []

        async def show(pending: PendingInput, step: InputStep) -> None:
            blocks = input_blocks(pending, step, user.platform_user_id)
            fallback = step.text[:200]
            response = await self._post_to_asker(user, fallback, blocks, "question")
            if response is not None and in_dm:
                posted.append(str(response["ts"]))
            if response is None:
                pending.take_key(CANCEL)  # nobody could be asked

        answer = await self.ask_user(user, chat, question, show)
        for ts in posted:
            await slack_call(
                "chat.update (question closed)",
                self.client.chat_update(
                    channel=self.channel, ts=ts, text=_("Answered."), blocks=note_blocks("✓")
                ),
            )
        return answer

    async def _post_to_asker(
        self, user: UserRef, fallback: str, blocks: list[dict[str, Any]], what: str
    ) -> Any:
        """A question for `user` alone: an ephemeral message outside a DM, a plain one in a
        DM (theirs anyway, and updatable); Slack's response, or None if it failed."""
        if self.channel.startswith("D"):
            return await slack_call(
                f"chat.postMessage ({what})",
                self.client.chat_postMessage(
                    channel=self.channel, thread_ts=self.thread_ts, text=fallback, blocks=blocks
                ),
            )
        return await slack_call(
            f"chat.postEphemeral ({what})",
            self.client.chat_postEphemeral(
                channel=self.channel,
                user=user.platform_user_id,
                thread_ts=self.thread_ts,
                text=fallback,
                blocks=blocks,
            ),
        )

    # -- in the background -------------------------------------------------------------

    def _think(self) -> None:
        """The turn has run `preview_delay`: show a status, unless its text is on the way
        (the flusher shows that within `preview_delay`)."""
        if not self._streamed:
            self._thinking_call = asyncio.create_task(self._set_status(_("is thinking…")))

    async def _flush_periodically(self) -> None:
        """Send what accumulated: first `preview_delay` after the text began, then once
        per interval, so text never waits for the next delta while the model pauses."""
        wait = self.preview_delay if self._ts is None else self._interval()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._stop_flusher.wait()
            if self._stop_flusher.is_set():
                return
            await self._flush(final=False)
            wait = self._interval()

    def _interval(self) -> float:
        return self.update_interval if self.mode == "update" else self.stream_interval

    async def _stop_background(self) -> None:
        """No "is thinking…" and no flushes from now on; a call already in flight is
        awaited, never cut off (Slack may have acted on it)."""
        if self._thinking is not None:
            self._thinking.cancel()
        if self._thinking_call is not None:
            await self._thinking_call
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            self._stop_flusher.set()
            await flusher
            self._stop_flusher.clear()

    # -- writing -----------------------------------------------------------------------

    async def _flush(self, *, final: bool) -> None:
        text, self._buffer = self._buffer, ""
        if final and self._ts is None:
            if text:  # finished before a preview began: the answer in one message
                await self._post(text)
            return
        while text and len(self._text) + len(text) > self.message_limit:
            cut = cut_point(text, max(self.message_limit - len(self._text), 1))
            await self._write(text[:cut])
            await self._close()
            text = text[cut:].lstrip("\n")
        if final and self._ts is not None and self.mode == "stream":
            await self._close(tail=text)  # the last piece rides on chat.stopStream
            return
        await self._write(text)
        if final:
            await self._close()

    async def _write(self, piece: str) -> None:
        if not piece or self._dead:
            return
        if self._ts is None:
            await self._open(piece)
        elif self.mode == "stream":
            await slack_call(
                "chat.appendStream",
                self.client.chat_appendStream(
                    channel=self.channel, ts=self._ts, markdown_text=piece
                ),
            )
            self._text += piece
        else:
            self._text += piece
            await slack_call(
                "chat.update",
                self.client.chat_update(
                    channel=self.channel,
                    ts=self._ts,
                    text=self._text,
                    blocks=markdown_blocks(self._text),
                ),
            )

    async def _open(self, piece: str) -> None:
        if self.mode != "update":
            try:
                response = await self.client.chat_startStream(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    markdown_text=piece,
                    recipient_user_id=self.user_id,
                    recipient_team_id=self.team_id,
                )
            except SlackApiError as exc:
                error = slack_error(exc)
                if error in CHANNEL_ERRORS:
                    log_slack_error("chat.startStream", exc)
                    self._dead = True
                    return
                log.info("slack streaming unavailable (%s): falling back to chat.update", error)
                self.mode = "update"
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("slack streaming failed (%s): falling back to chat.update", exc)
                self.mode = "update"
            else:
                self.mode = "stream"
                self._ts, self._text = str(response["ts"]), piece
                self._replied(self._ts)
                await self._noted(self._ts)
                return
        ts = await self._post(piece)
        if ts is not None:
            self._ts, self._text = ts, piece
            await self._noted(ts)

    async def _task(self, chunk: dict[str, object]) -> None:
        """Show a task chunk in the reply's stream, opening it if none is open (tools of
        one round start together: the lock keeps them in one stream)."""
        async with self._opening:
            if self._dead or self.mode == "update":
                return
            if self._ts is not None:
                await slack_call(
                    "chat.appendStream (task)",
                    self.client.chat_appendStream(
                        channel=self.channel, ts=self._ts, chunks=[chunk]
                    ),
                )
                return
            try:
                response = await self.client.chat_startStream(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    chunks=[chunk],
                    task_display_mode="timeline",
                    recipient_user_id=self.user_id,
                    recipient_team_id=self.team_id,
                )
            except SlackApiError as exc:
                error = log_slack_error("chat.startStream (task)", exc)
                if error in CHANNEL_ERRORS:
                    self._dead = True
                else:
                    self.mode = "update"  # no stream: the answer goes the chat.update way
                return
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("slack streaming failed (%s): falling back to chat.update", exc)
                self.mode = "update"
                return
            self.mode = "stream"
            self._ts, self._text = str(response["ts"]), ""
            self._replied(self._ts)
            await self._noted(self._ts)

    async def _noted(self, ts: str) -> None:
        """Tell the durable turn which message shows its answer being written."""
        if self._on_preview is not None and len(self.posted) <= 1:
            await self._on_preview(ts)

    def _replied(self, ts: str) -> None:
        self.posted.append(ts)
        self._status_shown = False  # Slack clears the status when the app replies

    async def _close(self, tail: str = "") -> None:
        if self._ts is not None and self.mode == "stream" and not self._dead:
            await slack_call(
                "chat.stopStream",
                self.client.chat_stopStream(
                    channel=self.channel,
                    ts=self._ts,
                    markdown_text=tail or None,
                    blocks=[feedback_block()] if self._feedback else None,
                ),
            )
        self._ts, self._text = None, ""

    async def _post(self, text: str) -> str | None:
        if self._dead:
            return None
        last: str | None = None
        pieces = split_text(text, self.message_limit)
        for index, piece in enumerate(pieces):
            blocks = markdown_blocks(piece)
            if self._feedback and index == len(pieces) - 1:
                blocks.append(feedback_block())
            response = await slack_call(
                "chat.postMessage",
                self.client.chat_postMessage(
                    channel=self.channel,
                    thread_ts=self.thread_ts,
                    text=piece,
                    blocks=blocks,
                ),
            )
            if response is None:
                return None
            last = str(response["ts"])
            self._replied(last)
        return last

    async def _set_status(self, status: str) -> None:
        if self._dead:
            return
        if self.sessions is not None:
            if self.sessions.agents and status and self._session_busy:
                return  # "processing" already: the tasks say what is going on
            shown = await self.sessions.set_status(
                self.channel, self.thread_ts, working=status, title=self.title
            )
            if self.sessions.agents:
                self._session_busy = shown and bool(status)
            else:
                self._status_shown = shown
            return
        response = await slack_call(
            "assistant.threads.setStatus",
            self.client.assistant_threads_setStatus(
                channel_id=self.channel, thread_ts=self.thread_ts, status=status
            ),
        )
        self._status_shown = bool(status) and response is not None
