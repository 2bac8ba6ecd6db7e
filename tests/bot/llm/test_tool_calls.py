"""Tool calls built from what the stream sent: the assembler and the Hermes markup parser."""

from __future__ import annotations

import json

import pytest

from bot.llm.tool_calls import ToolCallAssembler, ToolCallMarkup


def test_a_new_id_at_a_used_index_starts_a_new_call() -> None:
    calls = ToolCallAssembler()
    for place in ("Paris", "Zürich"):
        calls.feed(
            [
                {
                    "index": 0,
                    "id": f"call_{place}",
                    "function": {"name": "get_weather", "arguments": json.dumps({"place": place})},
                }
            ]
        )
    assert [(c.id, c.arguments) for c in calls.calls()] == [
        ("call_Paris", {"place": "Paris"}),
        ("call_Zürich", {"place": "Zürich"}),
    ]


def test_the_same_id_again_continues_its_call() -> None:
    calls = ToolCallAssembler()
    calls.feed([{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a":'}}])
    calls.feed([{"index": 0, "id": "c1", "function": {"arguments": " 1}"}}])
    calls.feed([{"index": 0, "id": "", "function": {}}])  # Qwen's closing chunk
    [call] = calls.calls()
    assert (call.id, call.name, call.arguments) == ("c1", "f", {"a": 1})


def test_a_whole_call_again_with_the_same_id_is_a_second_call() -> None:
    # Servers that reuse ids (Ollama-style whole calls at index 0): the engine renames the
    # duplicate; the assembler must not glue the two argument objects together.
    calls = ToolCallAssembler()
    for place in ("Paris", "Zürich"):
        calls.feed(
            [
                {
                    "index": 0,
                    "id": "call_1",
                    "function": {"name": "get_weather", "arguments": {"place": place}},
                }
            ]
        )
    assert [(c.id, c.arguments) for c in calls.calls()] == [
        ("call_1", {"place": "Paris"}),
        ("call_1", {"place": "Zürich"}),
    ]


def test_interleaved_indexes_keep_their_order() -> None:
    calls = ToolCallAssembler()
    calls.feed([{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}])
    calls.feed([{"index": 1, "id": "b", "function": {"name": "g", "arguments": '{"y"'}}])
    calls.feed([{"index": 0, "function": {"arguments": '{"x": 1}'}}])
    calls.feed([{"index": 1, "function": {"arguments": ": 2}"}}])
    assert [(c.id, c.arguments) for c in calls.calls()] == [("a", {"x": 1}), ("b", {"y": 2})]


def test_without_index_a_new_id_starts_a_call_and_the_rest_continues() -> None:
    calls = ToolCallAssembler()
    calls.feed([{"id": "a", "function": {"name": "f", "arguments": '{"x"'}}])
    calls.feed([{"function": {"arguments": ": 1}"}}])
    calls.feed([{"id": "b", "function": {"name": "g", "arguments": "{}"}}])
    assert [(c.id, c.name, c.arguments) for c in calls.calls()] == [
        ("a", "f", {"x": 1}),
        ("b", "g", {}),
    ]


def test_object_arguments_are_encoded_not_concatenated() -> None:
    calls = ToolCallAssembler()
    calls.feed(
        [{"index": 0, "id": "a", "function": {"name": "f", "arguments": {"city": "Zürich"}}}]
    )
    [call] = calls.calls()
    assert call.arguments == {"city": "Zürich"}
    assert json.loads(call.raw_arguments) == {"city": "Zürich"}


def test_garbage_deltas_are_ignored() -> None:
    calls = ToolCallAssembler()
    calls.feed("not a list")
    calls.feed([None, 3])
    assert not calls and calls.calls() == []


BLOCK = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.mark.parametrize("size", [1, 2, 3, 5, 11, 1000])
def test_markup_split_anywhere_becomes_a_call(size: int) -> None:
    text = "Let me check." + BLOCK + "Done?"
    markup = ToolCallMarkup()
    shown = "".join(markup.feed(text[i : i + size]) for i in range(0, len(text), size))
    shown += markup.flush()
    assert shown == "Let me check.Done?"
    [call] = markup.calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert call.id.startswith("call_")


def test_markup_with_two_calls_and_string_arguments() -> None:
    markup = ToolCallMarkup()
    second = '<tool_call>{"name": "get_time", "arguments": "{\\"tz\\": \\"UTC\\"}"}</tool_call>'
    assert markup.feed(BLOCK + "\n" + second) == "\n"
    assert markup.flush() == ""
    assert [(c.name, c.arguments) for c in markup.calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "UTC"}),
    ]
    assert markup.calls[0].id != markup.calls[1].id


def test_markup_that_is_not_json_is_a_call_with_an_error() -> None:
    markup = ToolCallMarkup()
    markup.feed('<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>')
    [call] = markup.calls
    assert call.name == "get_weather" and call.arguments is None
    assert "not valid JSON" in call.arguments_error


def test_an_unclosed_block_is_a_call_cut_short() -> None:
    markup = ToolCallMarkup()
    assert markup.feed('Sure. <tool_call>{"name": "get_weather", "argu') == "Sure. "
    assert markup.flush() == ""
    [call] = markup.calls
    assert call.name == "get_weather" and "not closed" in call.arguments_error


def test_text_that_only_looks_like_a_tag_is_shown() -> None:
    markup = ToolCallMarkup()
    assert markup.feed("a <tool") == "a "
    assert markup.feed("box> b") == "<toolbox> b"
    assert markup.flush() == "" and markup.calls == []


def test_a_signature_sent_on_its_own_delta_joins_the_call_before_it() -> None:
    calls = ToolCallAssembler()
    calls.feed([{"id": "a", "function": {"name": "f", "arguments": "{}"}}])
    calls.feed([{"extra_content": {"google": {"thought_signature": "sig-a"}}}])
    calls.feed([{"id": "b", "function": {"name": "g", "arguments": "{}"}}])
    assert [c.id for c in calls.calls()] == ["a", "b"]
    assert calls.signatures() == {"0": "sig-a"}
