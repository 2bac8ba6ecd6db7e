"""A tool's question in a Slack channel: ephemeral for the asker, answered by their
press only."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.domain import (
    InputChoice,
    InputField,
    InputFieldKind,
    InputLimits,
    InputQuestion,
    ToolContext,
)
from bot.toolkit import tool
from integrations.slack.confirmations import PICK
from tests.apps import wait_until
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.slack_server import FakeSlackServer
from tests.integrations.slack.harness import ALICE, CHANNEL, EVE, HarnessFactory, mention_event
from tests.integrations.slack.test_interactions import buttons, confirmation_message

COLOUR = InputField(
    "colour", "Colour", InputFieldKind.CHOICE, choices=(InputChoice("red"), InputChoice("blue"))
)


class NoParams(BaseModel):
    pass


@tool()
async def pick_colour(params: NoParams, ctx: ToolContext) -> str:
    """Ask the user for a colour."""
    assert ctx.ask is not None
    answer = await ctx.ask(InputQuestion("Which one?", fields=(COLOUR,), asked_by="Paint"))
    return f"{answer.action}: {answer.values}"


async def test_a_question_in_a_channel_is_the_askers_alone(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(tools=(pick_colour,))
    llm.script(tool_call_reply(("pick_colour", {})), text_reply("Blue it is."))
    await harness.event(mention_event("pick a colour"))

    channel, ts, token, question = await confirmation_message(slack, "chat.postEphemeral")
    assert question["user"] == ALICE and channel == CHANNEL
    assert buttons(question) == ["red", "blue", "Decline", "Cancel"]
    assert "Paint asks: Which one?" in question["blocks"][0]["text"]["text"]

    await harness.press(
        "parley_input_1", token, user=EVE, channel=channel, message_ts=ts, ephemeral=True
    )
    refusal = (await slack.wait_for("chat.postEphemeral", 2))[1]
    assert refusal["user"] == EVE and "someone else" in refusal["text"]
    assert len(llm.requests) == 1

    await harness.press(
        "parley_input_1",
        token,
        user=ALICE,
        channel=channel,
        message_ts=ts,
        ephemeral=True,
        response_url=slack.response_url,
    )
    review = (await posted_questions(slack, 3))[2]  # after Eve's refusal
    assert "Colour: blue" in review["blocks"][0]["text"]["text"]
    assert buttons(review) == ["Send", "Change", "Decline", "Cancel"]
    await harness.press(
        "parley_input_a",
        token,
        user=ALICE,
        channel=channel,
        message_ts=review["_ts"],
        ephemeral=True,
        response_url=slack.response_url,
    )
    await wait_until(lambda: len(llm.requests) == 2)
    assert llm.requests[1]["messages"][-1]["content"] == "accept: {'colour': 'blue'}"


INSTRUMENTS = InputField(
    "instruments",
    "Instruments",
    InputFieldKind.MULTI_CHOICE,
    choices=tuple(InputChoice(name) for name in ("Guitar", "Piano", "Violin", "Drums", "Bass")),
    default=["Guitar"],
    limits=InputLimits(min_items=1, max_items=3),
)


@tool()
async def pick_instruments(params: NoParams, ctx: ToolContext) -> str:
    """Ask the user for instruments."""
    assert ctx.ask is not None
    answer = await ctx.ask(InputQuestion("Which?", fields=(INSTRUMENTS,), asked_by="Band"))
    return f"{answer.action}: {answer.values}"


def ticked(*keys: str) -> dict[str, Any]:
    """A question's checkboxes as Slack reports them with a press (`state.values`)."""
    options = [{"text": {"type": "plain_text", "text": key}, "value": key} for key in keys]
    return {PICK: {PICK: {"type": "checkboxes", "selected_options": options}}}


async def posted_questions(slack: FakeSlackServer, count: int) -> list[dict[str, Any]]:
    await wait_until(lambda: len(slack.bodies("chat.postEphemeral")) >= count)
    return slack.bodies("chat.postEphemeral")


async def test_a_multi_choice_is_checkboxes_read_when_done_is_pressed(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(tools=(pick_instruments,))
    llm.script(tool_call_reply(("pick_instruments", {})), text_reply("Nice band."))
    await harness.event(mention_event("pick instruments"))

    [question] = await posted_questions(slack, 1)
    assert not question.get("_failed")  # Block Kit takes it
    section, picker, actions = question["blocks"]
    assert "Choices: from 1 to 3." in section["text"]["text"]
    [checkboxes] = picker["elements"]
    assert checkboxes["type"] == "checkboxes" and checkboxes["action_id"] == PICK
    assert [o["text"]["text"] for o in checkboxes["options"]][:2] == ["Guitar", "Piano"]
    assert checkboxes["initial_options"] == checkboxes["options"][:1]  # the default
    assert [e["text"]["text"] for e in actions["elements"]] == ["Done", "Decline", "Cancel"]
    token = actions["elements"][0]["value"]
    ts = question["_ts"]

    # Ticking only tells Slack; Parley reads the ticks with Done.
    await harness.press(PICK, "", user=ALICE, channel=CHANNEL, message_ts=ts, ephemeral=True)
    await harness.press(
        "parley_input_a",
        token,
        user=ALICE,
        channel=CHANNEL,
        message_ts=ts,
        ephemeral=True,
        response_url=slack.response_url,
        state=ticked("0", "1", "2", "3"),
    )
    again = (await posted_questions(slack, 2))[1]
    assert "Not taken: Choose at most 3 options." in again["blocks"][0]["text"]["text"]
    assert len(llm.requests) == 1

    await harness.press(
        "parley_input_a",
        token,
        user=ALICE,
        channel=CHANNEL,
        message_ts=again["_ts"],
        ephemeral=True,
        response_url=slack.response_url,
        state=ticked("1", "3"),
    )
    review = (await posted_questions(slack, 3))[2]
    assert "Instruments: Piano, Drums" in review["blocks"][0]["text"]["text"]
    await harness.press(
        "parley_input_a",
        token,
        user=ALICE,
        channel=CHANNEL,
        message_ts=review["_ts"],
        ephemeral=True,
        response_url=slack.response_url,
    )
    await wait_until(lambda: len(llm.requests) == 2)
    assert llm.requests[1]["messages"][-1]["content"] == (
        "accept: {'instruments': ['Piano', 'Drums']}"
    )


COLOURS = InputField(
    "colours",
    "Colours",
    InputFieldKind.MULTI_CHOICE,
    choices=tuple(InputChoice(f"c{n}", f"Colour {n}") for n in range(12)),
    default=["c11"],
)


@tool()
async def pick_colours(params: NoParams, ctx: ToolContext) -> str:
    """Ask the user for colours."""
    assert ctx.ask is not None
    answer = await ctx.ask(InputQuestion("Which?", fields=(COLOURS,), asked_by="Paint"))
    return f"{answer.action}: {answer.values}"


async def test_more_options_than_checkboxes_take_are_a_multi_select_menu(
    make_slack: HarnessFactory, llm: ScriptedOpenAIServer, slack: FakeSlackServer
) -> None:
    harness = await make_slack(tools=(pick_colours,))
    llm.script(tool_call_reply(("pick_colours", {})), text_reply("Colourful."))
    await harness.event(mention_event("pick colours"))

    [question] = await posted_questions(slack, 1)
    assert not question.get("_failed")  # Block Kit takes twelve options in a menu
    [menu] = question["blocks"][1]["elements"]
    assert menu["type"] == "multi_static_select" and len(menu["options"]) == 12
    assert menu["initial_options"] == [menu["options"][11]]
    token = question["blocks"][2]["elements"][0]["value"]
    state = {PICK: {PICK: {"type": "multi_static_select", "selected_options": menu["options"][:2]}}}
    await harness.press(
        "parley_input_a",
        token,
        user=ALICE,
        channel=CHANNEL,
        message_ts=question["_ts"],
        ephemeral=True,
        response_url=slack.response_url,
        state=state,
    )
    review = (await posted_questions(slack, 2))[1]
    assert "Colours: Colour 0, Colour 1" in review["blocks"][0]["text"]["text"]
    await harness.press(
        "parley_input_a",
        token,
        user=ALICE,
        channel=CHANNEL,
        message_ts=review["_ts"],
        ephemeral=True,
        response_url=slack.response_url,
    )
    await wait_until(lambda: len(llm.requests) == 2)
    assert llm.requests[1]["messages"][-1]["content"] == "accept: {'colours': ['c0', 'c1']}"
