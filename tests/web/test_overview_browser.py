"""The overview in headless Chromium (Debian's, never a downloaded one) at desktop and
phone width: the chart's SVG has its scale, dates and axis titles, nothing overflows the
page sideways, and screenshots go to tests/artifacts/console/overview-<width>.png.

Skipped unless PARLEY_TEST_BROWSER=1, as the other browser tests.
"""

from __future__ import annotations

import pytest

from tests.fakes.openai_server import ScriptedOpenAIServer
from tests.web.console_harness import PASSWORD, ConsoleFactory
from tests.web.overview_data import FINANCE, tell
from tests.web.test_admin_console_browser import ARGS, ARTIFACTS, BROWSER_WANTED, CHROMIUM
from tests.web.test_admin_console_browser import CHROMIUM_PRESENT as CHROMIUM_FOUND
from tools.clock import get_current_time

pytestmark = pytest.mark.skipif(
    not BROWSER_WANTED,
    reason="browser tests need PARLEY_TEST_BROWSER=1 and Debian's chromium (.ci/run does both)",
)


@pytest.mark.parametrize("width", [1280, 390])
async def test_the_overview_reads_well_at_desktop_and_phone_width(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer, width: int
) -> None:
    if not CHROMIUM_FOUND:
        pytest.fail(f"PARLEY_TEST_BROWSER is set but {CHROMIUM} is missing", pytrace=False)
    from playwright.async_api import async_playwright, expect

    console = await make_console(tools=(get_current_time,))
    story = await tell(console, llm)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(
            viewport={"width": width, "height": 900}, java_script_enabled=False
        )
        try:
            page = await context.new_page()
            await page.goto(f"{console.url}/admin/")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            # The landing page after sign-in is the overview.
            await expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
            assert page.url.endswith("/admin/overview")

            chart = page.get_by_role("img", name="Turns per day")
            await expect(chart).to_be_visible()
            y_labels = await chart.locator("text.y-label").all_text_contents()
            assert y_labels == ["0", "10", "20", "30"]
            dates = await chart.locator("text.x-label").evaluate_all(
                "nodes => nodes.map(n => n.getAttribute('data-date'))"
            )
            assert len(dates) == 7 and dates[-1] == story.today
            assert await chart.locator("text.axis-title").all_text_contents() == [
                "Day (UTC)",
                "Turns",
            ]
            # Labels must be big enough to read: at least 9 CSS pixels tall on screen.
            box = await chart.locator("text.x-label").last.bounding_box()
            assert box is not None and box["height"] >= 9, box
            # Nothing sticks out sideways (wide tables scroll inside their own box).
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"the page is {overflow} px wider than a {width} px screen"

            # The table fallback opens without JavaScript.
            await page.get_by_text("The same as a table").click()
            await expect(page.get_by_role("cell", name=story.today, exact=True)).to_be_visible()
            await expect(page.get_by_text(story.failed_turn_id)).to_be_visible()
            await page.screenshot(path=str(ARTIFACTS / f"overview-{width}.png"), full_page=True)
            await chart.screenshot(path=str(ARTIFACTS / f"overview-{width}-chart.png"))
        finally:
            await context.close()
            await browser.close()


async def test_every_console_page_fits_a_phone_screen(
    make_console: ConsoleFactory, llm: ScriptedOpenAIServer
) -> None:
    if not CHROMIUM_FOUND:
        pytest.fail(f"PARLEY_TEST_BROWSER is set but {CHROMIUM} is missing", pytrace=False)
    from playwright.async_api import async_playwright

    console = await make_console(tools=(get_current_time,))
    await tell(console, llm)
    channel_id = await console.app.store.channel_id(FINANCE)
    pages = ["channels", f"channels/{channel_id}", "users", "conversations", "reminders"]
    pages += ["audit", "usage"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(
            viewport={"width": 390, "height": 900}, java_script_enabled=False
        )
        try:
            page = await context.new_page()
            await page.goto(f"{console.url}/admin/")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            wider = {}
            for name in pages:
                await page.goto(f"{console.url}/admin/{name}")
                overflow = await page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                if overflow > 0:
                    wider[name] = overflow
                shot = name.replace("/", "-")
                await page.screenshot(path=str(ARTIFACTS / f"{shot}-390.png"), full_page=True)
        finally:
            await context.close()
            await browser.close()
    assert wider == {}, f"pages wider than a 390 px screen (px): {wider}"
