"""The overview page over HTTP: what it counts, and the chart's axes, dates and table."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

from pydantic import BaseModel

from bot.approvals.gate import Answer, ApprovalQuestion
from bot.domain import IncomingMessage, ToolContext, UserRef
from bot.storage.activity import TurnSample
from bot.toolkit import tool
from bot.web.overview import FAILED, Overview, PlatformState, nice_scale, percentiles
from tests.apps import AppFactory
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply, tool_call_reply
from tests.fakes.surface import RecordingSurface
from tests.web.console_harness import ConsoleFactory, sign_in
from tests.web.overview_data import ALICE, FINANCE, HISTORY, tell
from tools.clock import get_current_time


def cells(html: str, first: str) -> list[str]:
    """The text of each cell of the first table row whose first cell is `first`."""
    return row_with(html, lambda texts: texts[0] == first)


def row_with(html: str, wanted: object) -> list[str]:
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        texts = [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
        ]
        if texts and wanted(texts):  # type: ignore[operator]
            return texts
    raise AssertionError("no such row")


async def test_the_overview_is_the_landing_page_and_counts_what_happened(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=(get_current_time,))
    story = await tell(console, llm)
    async with console.client() as client:
        await sign_in(client)
        landing = await client.get("/admin/")
        page = await client.get("/admin/overview")

    assert landing.status_code == 303 and landing.headers["location"] == "/admin/overview"
    html = page.text
    assert page.status_code == 200
    # Today: three turns, the last one failed; its id is listed with what failed.
    assert cells(html, story.today) == [story.today, "2", "1"]
    failed = row_with(html, lambda texts: len(texts) > 1 and texts[1] == story.failed_turn_id)
    assert failed[0].startswith(story.today) and failed[2:] == [
        "test",
        "the model failed (scripted)",
    ]
    assert f"{sum(a + f for _, a, f in HISTORY) + 3} turns." in html
    # Model calls by vendor and model over the week: the history's and today's four.
    week = [(a, f) for days, a, f in HISTORY if days < 7]
    calls = sum(a + f for a, f in week) + 4
    failures = sum(f for _, f in week) + 1
    assert cells(html, "generic") == ["generic", "scripted", str(calls), str(failures)]
    assert cells(html, "get_current_time") == ["get_current_time", "1", "0"]
    # Reminders: one due within a day, one failed.
    assert re.search(r'<span class="n">1</span> reminders due in 24 h', html)
    assert re.search(r'<span class="n off">1</span> reminders failed', html)
    # The channel and the user by name, with their ids.
    assert cells(html, "Finance")[:2] == ["Finance", "test:room-1"]
    assert cells(html, "Alice Example")[:2] == ["Alice Example", "test:alice"]


async def test_the_chart_has_a_scale_dates_and_axis_titles(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=(get_current_time,))
    story = await tell(console, llm)
    async with console.client() as client:
        await sign_in(client)
        html = (await client.get("/admin/overview")).text
    svg = html[html.index("<svg") : html.index("</svg>")]
    y_labels = re.findall(r'class="y-label"[^>]*>([^<]+)<', svg)
    assert y_labels == ["0", "10", "20", "30"]  # the busiest day had 28 turns
    dates = re.findall(r'data-date="([\d-]+)"', svg)
    assert len(dates) == 7 and dates[-1] == story.today
    assert re.findall(r'class="x-label"[^>]*>([A-Z][a-z]{2} \d{1,2})<', svg)
    assert ">Day (UTC)<" in svg and ">Turns<" in svg
    # One bar per day with turns, two where some failed (answered below, failed on top).
    assert svg.count("<rect") == len(HISTORY) + 1 + sum(1 for _, _, f in HISTORY if f) + 1
    assert svg.count(f'fill="{FAILED}"') == sum(1 for _, _, f in HISTORY if f) + 1


def test_scales_are_round_and_percentiles_nearest_rank() -> None:
    assert nice_scale(0) == (4, 1)
    assert nice_scale(3) == (3, 1)
    assert nice_scale(28) == (30, 10)
    assert nice_scale(47) == (50, 10)
    assert nice_scale(1234) == (1500, 500)
    samples = [TurnSample(float(s), "v", {}, {}) for s in range(1, 101)]
    assert percentiles(samples) == (100, "50.00 s", "90.00 s", "99.00 s")
    assert percentiles([]) == (0, "-", "-", "-")


class Launch(BaseModel):
    target: str


@tool(side_effect=True)
async def launch(params: Launch, ctx: ToolContext) -> str:
    """Launch something (asks first)."""
    return f"launched {params.target}"


class WaitingSurface(RecordingSurface):
    """A user who has been asked and has not pressed anything yet."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.press = asyncio.Event()

    async def confirm(self, user: UserRef, question: ApprovalQuestion) -> Answer:
        self.asked.set()
        await self.press.wait()
        return await question.respond(Answer.ONCE)


async def test_an_unanswered_confirmation_counts_as_an_approval_waiting(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    console = await make_console(tools=(launch,))
    llm.script(tool_call_reply(("launch", {"target": "rocket"})), text_reply("Launched."))
    surface = WaitingSurface()
    turn = asyncio.create_task(
        console.app.engine.handle(IncomingMessage(chat=FINANCE, user=ALICE, text="go"), surface)
    )
    async with console.client() as client:
        await sign_in(client)
        await asyncio.wait_for(surface.asked.wait(), 10)
        waiting = (await client.get("/admin/overview")).text
        gauge = (await client.get("/metrics")).text
        surface.press.set()
        outcome = await turn
        answered = (await client.get("/admin/overview")).text
    assert not outcome.error and outcome.text == "Launched."
    assert '<span class="n">1</span> approvals waiting' in waiting
    assert "parley_approvals_waiting 1.0" in gauge
    assert '<span class="n">0</span> approvals waiting' in answered


async def test_platforms_show_whether_they_run_and_their_last_turn(make_app: AppFactory) -> None:
    app = await make_app()
    await app.activity_store.record(
        [
            {
                "turn_id": "t1",
                "finished_at": datetime.now(UTC),
                "platform": "slack",
                "outcome": "ok",
                "seconds": 1.0,
                "vendor": "openai",
                "models": {},
                "tools": {},
                "error": "",
            }
        ],
        keep_days=90,
    )
    overview = Overview(
        store=app.activity_store,
        platforms=lambda: [PlatformState("slack", True), PlatformState("telegram", False)],
    )
    context = await overview.context()
    (slack, slack_up, slack_last), telegram = context["platforms"]
    assert (slack, slack_up) == ("slack", True) and slack_last is not None
    assert telegram == ("telegram", False, None)
    assert context["other_platforms"] == []
