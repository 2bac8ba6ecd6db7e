"""Preparing a round's calls: ids unique and usable for every vendor, arguments bounded."""

from __future__ import annotations

from bot.domain import ChatMessage, Role, ToolCall
from bot.turn.tool_round import ids_in, prepare_round


def call(call_id: str, raw: str = '{"a": 1}', name: str = "echo") -> ToolCall:
    return ToolCall(call_id, name, {"a": 1}, raw)


def test_repeated_and_empty_ids_get_fresh_ones_and_the_first_holder_keeps_its_own() -> None:
    prepared = prepare_round([call("c1"), call("c1"), call(""), call("c2")], set(), 1024)

    ids = [c.id for c in prepared.calls]
    assert ids[0] == "c1" and ids[3] == "c2"
    assert len(set(ids)) == 4 and prepared.renamed == 2
    assert all(c.arguments == {"a": 1} for c in prepared.calls)  # only the ids changed


def test_ids_already_in_the_conversation_or_unusable_are_replaced() -> None:
    history = [ChatMessage(Role.ASSISTANT, tool_calls=(call("call_0"),))]
    too_long = "x" * 129  # more than the database keeps
    prepared = prepare_round(
        [call("call_0"), call(too_long), call("has space"), call("ok-id_1")], ids_in(history), 1024
    )

    ids = [c.id for c in prepared.calls]
    assert ids[3] == "ok-id_1" and "call_0" not in ids and too_long not in ids
    assert all(len(i) <= 40 and i.replace("_", "").isalnum() for i in ids[:3])


def test_vendor_ids_are_kept_verbatim() -> None:
    """Kimi's `functions.<name>:<idx>` and vLLM's 46 characters go back as issued: the
    shape a target vendor enforces is applied on the way out (bot/llm/openai_wire.py)."""
    vllm = "chatcmpl-tool-" + "ab" * 16
    prepared = prepare_round([call("functions.get_weather:0"), call(vllm)], set(), 1024)
    assert [c.id for c in prepared.calls] == ["functions.get_weather:0", vllm]
    assert prepared.renamed == 0


def test_a_fresh_id_never_takes_an_id_a_later_call_brings() -> None:
    prepared = prepare_round([call("a"), call("a"), call("b")], set(), 1024)
    assert [c.id for c in prepared.calls][2] == "b"
    assert len({c.id for c in prepared.calls}) == 3


def test_oversized_arguments_are_cut_to_a_stub_and_marked() -> None:
    raw = '{"text": "' + "y" * 5000 + '"}'
    prepared = prepare_round([call("c1", raw), call("c2")], set(), 1024)

    big, small = prepared.calls
    assert prepared.oversized == {0: len(raw)}
    assert big.arguments is None and len(big.raw_arguments) < 300
    assert big.arguments_error.startswith("arguments too long")
    assert small == call("c2")


def test_a_made_up_name_is_bounded() -> None:
    [named] = prepare_round([call("c1", name="n" * 500)], set(), 1024).calls
    assert named.name == "n" * 64
