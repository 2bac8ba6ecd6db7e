"""Approvals on a real database: who may answer, once, always, expiry, grants, rules,
audit; and cards within the platforms' limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.approvals.cards import render_card, split_parts
from bot.approvals.gate import Answer, Approvals, Mode, Press
from bot.domain import ChatKind, ChatRef, ToolContext, UserRef
from bot.storage import Database
from bot.storage.admin import AdminStore
from bot.storage.approvals import ApprovalStore
from bot.toolkit import tool
from tests.databases import migrated_database
from tests.fakes.surface import RecordingSurface
from tools.email import SendEmailParams, send_email

ALICE = UserRef("telegram", "1", "Alice")
EVE = UserRef("telegram", "2", "Eve")
CHAT = ChatRef("telegram", "-100", ChatKind.GROUP)
LONG_BODY = "\n".join(f"Line {n}: " + "all work and no play " * 3 for n in range(120))[:8000]


class NoteParams(BaseModel):
    text: str


@tool()
async def note(params: NoteParams, ctx: ToolContext) -> str:
    """Write a note (no side effects)."""
    return "noted"


def email(body: str = "See you at nine.") -> SendEmailParams:
    return SendEmailParams(to=["ops@example.com"], subject="Standup", body=body)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(request, tmp_path) as database:
        yield database


def approvals_on(database: Database, *, timeout: float = 30.0) -> Approvals:
    return Approvals(
        ApprovalStore(database), AdminStore(database), timeout_seconds=timeout, poll_seconds=0.05
    )


async def audit_actions(database: Database) -> list[tuple[str, str, bool]]:
    page = await AdminStore(database).audit_page()
    return [(row.action, row.actor, bool(row.allowed)) for row in reversed(page.rows)]


# -- cards ---------------------------------------------------------------------------------


def test_an_email_card_shows_to_subject_the_first_lines_and_the_length() -> None:
    card = send_email.approval_card(email())
    shown = render_card(card, "send_email", limit=4096)
    assert shown.text.splitlines()[:3] == [
        "Send an email",
        "To: ops@example.com",
        "Subject: Standup",
    ]
    assert "Body (16 characters):" in shown.text and "See you at nine." in shown.text
    assert not shown.cut


@pytest.mark.parametrize("limit", [4096, 3000, 1024])  # Telegram text, Slack section, caption
def test_an_8000_character_email_fits_every_limit_and_says_it_was_shortened(limit: int) -> None:
    card = send_email.approval_card(email(LONG_BODY))
    shown = render_card(card, "send_email", limit=limit)
    assert len(shown.text) <= limit and shown.cut
    assert "Body (8000 characters):" in shown.text and "Show all" in shown.text
    assert "Line 0:" in shown.text and "Line 100:" not in shown.text
    full = "\n".join(split_parts(LONG_BODY, limit))
    assert full.replace("\n", "") == LONG_BODY.replace("\n", "")
    assert all(len(part) <= limit for part in split_parts(LONG_BODY, limit))


def test_telegram_limits_count_utf16_code_units() -> None:
    emoji_body = "😀" * 3000  # 6,000 UTF-16 code units
    card = send_email.approval_card(email(emoji_body))

    def utf16(text: str) -> int:
        return len(text.encode("utf-16-le")) // 2

    shown = render_card(card, "send_email", limit=4096, measure=utf16)
    assert utf16(shown.text) <= 4096
    assert all(utf16(part) <= 4096 for part in split_parts(emoji_body, 4096, utf16))


def test_a_tool_without_a_card_shows_its_bounded_arguments() -> None:
    shown = render_card(note.approval_card(NoteParams(text="x" * 5000)), "note", limit=4096)
    assert shown.text.startswith("Run note\ntext: xxx") and shown.cut
    assert len(shown.text.splitlines()[1]) == len("text: ") + 200  # 199 x's and "…"


# -- questions -----------------------------------------------------------------------------


async def test_only_the_asker_answers_and_only_once(database: Database) -> None:
    approvals = approvals_on(database)
    question = await approvals.open(ALICE, CHAT, 7, send_email, email(), True)

    refused = await approvals.press(question.token, EVE, Answer.ONCE, surface="telegram")
    assert refused.result is Press.NOT_YOURS and refused.owner == "1"
    answered = await approvals.press(question.token, ALICE, Answer.ONCE, surface="telegram")
    assert answered.result is Press.ANSWERED
    assert await question.answer() is Answer.ONCE
    again = await approvals.press(question.token, ALICE, Answer.DENIED, surface="telegram")
    assert again.result is Press.GONE
    assert await approvals.press("nonsense", ALICE, Answer.ONCE, surface="x") == (
        await approvals.press("nonsense", ALICE, Answer.ONCE, surface="x")
    )
    actions = await audit_actions(database)
    assert ("approval.request", "telegram:1", True) in actions
    assert ("approval.answer", "telegram:2", False) in actions  # Eve's refused press
    assert ("approval.answer", "telegram:1", True) in actions


async def test_a_press_from_another_approvals_object_wakes_the_asker(database: Database) -> None:
    """Two replicas share only the database: B's press reaches A's waiting question."""
    replica_a, replica_b = approvals_on(database), approvals_on(database)
    question = await replica_a.open(ALICE, CHAT, 7, send_email, email(), True)
    outcome = await replica_b.press(question.token, ALICE, Answer.DENIED, surface="telegram")
    assert outcome.result is Press.ANSWERED and outcome.tool == "send_email"
    assert await question.answer() is Answer.DENIED
    # B can show the whole card to the asker too (it reads it from the row).
    assert "See you at nine." in (await replica_b.full_text(question.token, ALICE) or "")
    assert await replica_b.full_text(question.token, EVE) is None


async def test_a_question_expires_and_a_late_press_says_so(database: Database) -> None:
    approvals = approvals_on(database, timeout=0.3)
    question = await approvals.open(ALICE, CHAT, 7, send_email, email(), True)
    assert await question.answer() is Answer.EXPIRED
    late = await approvals.press(question.token, ALICE, Answer.ONCE, surface="telegram")
    assert late.result is Press.EXPIRED
    assert ("approval.expired", "telegram:1", True) in await audit_actions(database)


async def test_a_press_after_the_asking_process_is_gone_says_expired(database: Database) -> None:
    """A restart: the row is open and unexpired, but nobody polls it any more."""
    store = ApprovalStore(database)
    now = datetime.now(UTC)
    await store.open(
        token="old-question",
        asker=ALICE.qualified_id,
        place="telegram:-100",
        channel_id=7,
        tool="send_email",
        call="{}",
        full_text="Send an email",
        may_remember=True,
        now=now - timedelta(minutes=1),
        expires_at=now + timedelta(minutes=4),
    )
    after_restart = approvals_on(database)
    late = await after_restart.press("old-question", ALICE, Answer.ONCE, surface="telegram")
    assert late.result is Press.EXPIRED
    assert (await store.question("old-question")).state == "expired"  # type: ignore[union-attr]


async def test_always_allow_remembers_then_revocation_asks_again(database: Database) -> None:
    approvals = approvals_on(database)
    surface = RecordingSurface(confirm_answer=Answer.ALWAYS)
    assert await approvals.ask(surface, ALICE, CHAT, 7, send_email, email())
    assert len(surface.confirmations) == 1
    # The second call runs without a question; in another channel it asks again.
    assert await approvals.ask(surface, ALICE, CHAT, 7, send_email, email())
    assert len(surface.confirmations) == 1
    surface.confirm_answer = Answer.DENIED
    assert not await approvals.ask(surface, ALICE, CHAT, 8, send_email, email())
    assert not await approvals.ask(surface, EVE, CHAT, 7, send_email, email())
    assert len(surface.confirmations) == 3

    [grant] = await approvals.grants(user=ALICE)
    assert (grant.tool, grant.channel_id, grant.place) == ("send_email", 7, "telegram:-100")
    assert (
        await approvals.revoke(grant.id, actor=EVE.qualified_id, surface="telegram", own_only=True)
        is None
    )
    assert await approvals.revoke(
        grant.id, actor=ALICE.qualified_id, surface="telegram", own_only=True
    )
    assert not await approvals.ask(surface, ALICE, CHAT, 7, send_email, email())
    assert len(surface.confirmations) == 4
    actions = [action for action, _, _ in await audit_actions(database)]
    assert "approval.grant" in actions and "approval.revoke" in actions


async def test_admin_rules_ask_always_or_never(database: Database) -> None:
    approvals = approvals_on(database)
    surface = RecordingSurface(confirm_answer=Answer.ALWAYS)
    place = "telegram:-100"

    async def rule(
        item: object, mode: Mode | None, *, admin: bool = True, explicit: bool = False
    ) -> str:
        return await approvals.set_rule(
            channel_id=7,
            place=place,
            item=item,
            mode=mode,
            actor="telegram:9",  # type: ignore[arg-type]
            surface="telegram",
            is_admin=admin,
            explicit=explicit,
        )

    # A harmless tool runs unasked; an admin may make it ask every time.
    assert await approvals.ask(surface, ALICE, CHAT, 7, note, NoteParams(text="a"))
    assert surface.confirmations == []
    assert "Only admins" in await rule(note, Mode.ASK, admin=False)
    assert await rule(note, Mode.ASK) == ""
    await approvals.ask(surface, ALICE, CHAT, 7, note, NoteParams(text="a"))
    [question] = surface.questions
    assert not question.may_remember  # "always ask": no Always allow
    # "never ask" for a tool that acts on the world only when said explicitly.
    assert "explicit" in await rule(send_email, Mode.NEVER)
    assert await rule(send_email, Mode.NEVER, explicit=True) == ""
    assert await approvals.ask(surface, ALICE, CHAT, 7, send_email, email())
    assert len(surface.questions) == 1
    assert await approvals.rules(7) == {"note": Mode.ASK, "send_email": Mode.NEVER}
    assert await rule(send_email, None) == ""
    assert await approvals.rules(7) == {"note": Mode.ASK}
    page = await AdminStore(database).audit_page()
    rules = [row for row in page.rows if row.action == "approval.rule"]
    assert sum(1 for row in rules if not row.allowed) == 2
    assert any(row.details.get("explicit") for row in rules)


async def test_shutdown_ends_open_questions_as_expired(database: Database) -> None:
    approvals = approvals_on(database)
    question = await approvals.open(ALICE, CHAT, 7, send_email, email(), True)
    approvals.withdraw_all()
    assert await question.answer() is Answer.EXPIRED


async def test_tokens_fit_telegram_callback_data(database: Database) -> None:
    approvals = approvals_on(database)
    tokens = {
        (await approvals.open(ALICE, CHAT, 7, send_email, email(), True)).token for _ in range(20)
    }
    assert len(tokens) == 20
    assert all(len(f"ap:{token}:o".encode()) <= 64 for token in tokens)
