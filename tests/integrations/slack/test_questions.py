"""A tool's question in a Slack channel: ephemeral for the asker, answered by their
press only."""

from __future__ import annotations

from pydantic import BaseModel

from bot.domain import InputChoice, InputField, InputFieldKind, InputQuestion, ToolContext
from bot.toolkit import tool
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
    await wait_until(lambda: len(llm.requests) == 2)
    assert llm.requests[1]["messages"][-1]["content"] == "accept: {'colour': 'blue'}"
