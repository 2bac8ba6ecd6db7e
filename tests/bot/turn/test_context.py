from __future__ import annotations

from bot.domain import ChatMessage, Role, ToolCall
from bot.turn.context import (
    INTERRUPTED_RESULT,
    alternate,
    build_context,
    estimate_tokens,
    message_tokens,
    repair,
)


def user(text: str) -> ChatMessage:
    return ChatMessage(Role.USER, text)


def assistant(text: str, *calls: ToolCall) -> ChatMessage:
    return ChatMessage(Role.ASSISTANT, text, tool_calls=calls)


def result(call_id: str, text: str = "ok") -> ChatMessage:
    return ChatMessage(Role.TOOL, text, tool_call_id=call_id, name="t")


def call(call_id: str) -> ToolCall:
    return ToolCall(call_id, "t", {}, "{}")


def with_tokens(messages: list[ChatMessage]) -> list[tuple[ChatMessage, int]]:
    return [(message, message_tokens(message)) for message in messages]


def test_token_estimate_counts_cjk_characters_individually() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcdefgh") == 2
    assert estimate_tokens("北京天气") == 4


def test_everything_fits_under_a_large_budget() -> None:
    history = [user("a"), assistant("", call("c1")), result("c1"), assistant("done")]
    context = build_context("sys", with_tokens(history), [user("next")], 10_000)
    assert [m.role for m in context] == [
        Role.SYSTEM,
        Role.USER,
        Role.ASSISTANT,
        Role.TOOL,
        Role.ASSISTANT,
        Role.USER,
    ]
    assert context[0].content == "sys"
    assert context[-1].content == "next"


def test_trimming_drops_the_oldest_exchanges_first() -> None:
    history = [
        user("old " * 200),
        assistant("old answer " * 100),
        user("recent"),
        assistant("recent answer"),
    ]
    context = build_context("sys", with_tokens(history), [user("now")], 120)
    assert [m.content for m in context[1:]] == ["recent", "recent answer", "now"]


def test_trimming_never_separates_a_tool_call_from_its_results() -> None:
    big = "x" * 400
    history = [
        user("question"),
        assistant("", call("c1"), call("c2")),
        result("c1", big),
        result("c2", "small"),
        assistant("answer"),
    ]
    for budget in range(20, 400, 7):
        context = build_context("s", with_tokens(history), [user("next")], budget)
        roles = [m.role for m in context]
        for index, message in enumerate(context):
            if message.role is Role.ASSISTANT and message.tool_calls:
                following = context[index + 1 : index + 1 + len(message.tool_calls)]
                assert [m.tool_call_id for m in following] == ["c1", "c2"], budget
            if message.role is Role.TOOL:
                assert context[index - 1].role in (Role.ASSISTANT, Role.TOOL), budget
        assert roles[1] in (Role.USER,), (budget, roles)


def test_a_call_without_a_stored_result_gets_an_interrupted_result() -> None:
    history = [user("q"), assistant("", call("c1"), call("c2")), result("c2", "two"), user("again")]
    repaired = repair(history)
    assert [(m.role, m.tool_call_id, m.content) for m in repaired[2:4]] == [
        (Role.TOOL, "c1", INTERRUPTED_RESULT),
        (Role.TOOL, "c2", "two"),
    ]
    assert repaired[2].is_error


def test_orphan_tool_results_are_dropped() -> None:
    history = [user("q"), result("ghost"), assistant("a")]
    assert [m.role for m in repair(history)] == [Role.USER, Role.ASSISTANT]


def test_the_new_message_is_kept_even_over_budget() -> None:
    context = build_context("sys", with_tokens([user("old")]), [user("y" * 10_000)], 600)
    assert [m.role for m in context] == [Role.SYSTEM, Role.USER]
    assert context[-1].content.startswith("yyy")


def test_user_messages_left_unanswered_are_merged_with_the_next() -> None:
    history = [user("first"), user("second"), assistant("answer"), user("third")]
    context = build_context("sys", with_tokens(history), [user("fourth")], 10_000)
    assert [(m.role, m.content) for m in context] == [
        (Role.SYSTEM, "sys"),
        (Role.USER, "first\n\nsecond"),
        (Role.ASSISTANT, "answer"),
        (Role.USER, "third\n\nfourth"),
    ]
    assert alternate([assistant("a"), assistant("b")]) == [assistant("a"), assistant("b")]
