"""Send a plain-text email (asks the requesting user to confirm first)."""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, Field, field_validator

from bot.domain import ToolContext
from bot.errors import ToolError
from bot.toolkit import N_, ApprovalCard, Progress, tool

ADDRESS = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$")
MAX_RECIPIENTS = 10


class SendEmailParams(BaseModel):
    to: list[str] = Field(
        description="Recipient email addresses (at most 10), e.g. ['alice@example.com'].",
        min_length=1,
        max_length=MAX_RECIPIENTS,
    )
    subject: str = Field(description="One-line subject.", min_length=1, max_length=200)
    body: str = Field(description="The plain-text body.", min_length=1, max_length=20_000)

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        cleaned = [address.strip() for address in value]
        bad = [address for address in cleaned if not ADDRESS.match(address)]
        if bad:
            raise ValueError(f"not plain email addresses: {', '.join(map(repr, bad))}")
        return cleaned

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        # Every character str.splitlines() breaks on (U+2028, U+0085, \v …) and any other
        # control character: the email package folds or refuses them in a header, which
        # would fail only after the user confirmed.
        if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
            raise ValueError("the subject must be one line (no line breaks or control characters)")
        return value


async def _check(params: SendEmailParams, ctx: ToolContext) -> str | None:
    mailer = ctx.services.mailer
    if mailer is None:
        return "Email is not available on this bot."
    return mailer.refusal(params.to)


def _card(params: SendEmailParams) -> ApprovalCard:
    return ApprovalCard(
        N_("Send an email"),
        lines=((N_("To"), ", ".join(params.to)), (N_("Subject"), params.subject)),
        body=params.body,
        body_label=N_("Body"),
    )


def _progress(params: SendEmailParams) -> Progress:
    return Progress(N_("Sending the email to {to}…"), (("to", ", ".join(params.to)),))


@tool(side_effect=True, precheck=_check, timeout=60, card=_card, progress=_progress)
async def send_email(params: SendEmailParams, ctx: ToolContext) -> dict[str, object]:
    """Send a plain-text email from the bot's own address. The user is asked to confirm
    before it goes out; only recipients on the operator's allow-list can be written to.
    Write the complete subject and body yourself; say who it is from in the body if it
    matters."""
    mailer = ctx.services.mailer
    if mailer is None:
        raise ToolError("Email is not available on this bot.")
    receipt = await mailer.send(ctx.user, ctx.chat, params.to, params.subject, params.body)
    if not receipt.refused:
        return {"status": "sent", "to": ", ".join(params.to), "message_id": receipt.message_id}
    return {
        "status": "partly_sent",
        "message": receipt.note,
        "sent_to": list(receipt.sent_to),
        "refused": receipt.refused,
        "message_id": receipt.message_id,
    }
