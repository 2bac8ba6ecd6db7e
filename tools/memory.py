"""Memory the user controls: remember, recall and forget facts (per user, across chats).

The model stores only what the user explicitly asked it to remember; the descriptions
say so, because they are all the model knows of the rule. A fact is private (offered in
the user's direct chats only) unless the user says it may be shared where they talk
with others.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from bot.domain import MemoryFact, MemoryScope, ToolContext
from bot.errors import ToolError
from bot.toolkit import tool


class RememberParams(BaseModel):
    text: str = Field(
        description="The fact to remember, in one short sentence in the user's words, "
        "e.g. 'I am vegetarian' or 'My team is in Hangzhou'.",
        min_length=1,
        max_length=1000,
    )
    scope: Literal["private", "everywhere"] = Field(
        "private",
        description="'private' (the default): offered only in the user's direct chats "
        "with you. 'everywhere': also in groups and channels; only when the user said "
        "so.",
    )


@tool(changes=True)
async def remember(params: RememberParams, ctx: ToolContext) -> dict[str, Any]:
    """Remember a fact about the user for later conversations, ONLY when the user
    explicitly asks you to remember it ("remember that...", "记住..."). Never store
    anything on your own initiative, and never passwords, keys or other secrets. The
    remembered facts are shown to you at the start of later turns."""
    book = ctx.services.memory
    if book is None:
        raise ToolError("Memory is not available on this bot.")
    fact = await book.remember(ctx.user, ctx.chat, params.text, MemoryScope(params.scope))
    return {"remembered": describe(fact)}


class RecallParams(BaseModel):
    query: str | None = Field(
        None,
        description="Words to look for; leave empty to list every fact visible here.",
        max_length=200,
    )


@tool()
async def recall(params: RecallParams, ctx: ToolContext) -> dict[str, Any]:
    """List the facts the user asked you to remember that may be shown in this chat,
    with the ids forget takes. In a group or channel, only facts the user chose to share
    everywhere are listed."""
    book = ctx.services.memory
    if book is None:
        raise ToolError("Memory is not available on this bot.")
    facts = await book.facts_for(ctx.user, ctx.chat)
    if params.query:
        words = params.query.casefold().split()
        facts = [f for f in facts if any(word in f.text.casefold() for word in words)]
    return {"facts": [describe(fact) for fact in facts]}


class ForgetParams(BaseModel):
    id: int | None = Field(
        None, description="The id of the fact to forget (from recall); empty with all=true."
    )
    all: bool = Field(False, description="Forget every fact visible in this chat.")


@tool(changes=True)
async def forget(params: ForgetParams, ctx: ToolContext) -> str:
    """Forget a fact the user asked you to remember (or all of them, when the user asks
    for that). Use recall first to find the id."""
    book = ctx.services.memory
    if book is None:
        raise ToolError("Memory is not available on this bot.")
    if params.id is None and not params.all:
        raise ToolError("Give the id of the fact to forget, or all=true.")
    removed = await book.forget(ctx.user, ctx.chat, None if params.all else params.id)
    if not removed and params.id is not None:
        raise ToolError(f"There is no fact {params.id} visible here; call recall to see them.")
    return f"Forgot {removed} fact(s)."


def describe(fact: MemoryFact) -> dict[str, Any]:
    return {"id": fact.id, "text": fact.text, "scope": fact.scope.value}
