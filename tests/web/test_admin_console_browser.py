"""The console in headless Chromium (Debian's, never a downloaded one) through Playwright.

Skipped unless PARLEY_TEST_BROWSER=1 (CI sets it and installs Chromium); with it set, a
missing /usr/bin/chromium is a failure, not a skip. Each page's screenshot is saved
under tests/artifacts/console/.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain import ChatKind, ChatRef, IncomingMessage, ReminderRequest, UserRef
from tests.fakes.openai_server import ScriptedOpenAIServer, text_reply
from tests.fakes.surface import RecordingSurface
from tests.web.console_harness import PASSWORD, ConsoleFactory
from tools.clock import get_current_time

# Read at import: the autouse fixture clears PARLEY_* variables before each test.
BROWSER_WANTED = os.environ.get("PARLEY_TEST_BROWSER", "").strip() not in ("", "0")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_PRESENT = os.access(CHROMIUM, os.X_OK)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "console"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ALICE = UserRef("test", "alice", "Alice")
ROOM = ChatRef("test", "room-1", ChatKind.GROUP, "Finance")

pytestmark = pytest.mark.skipif(
    not BROWSER_WANTED,
    reason="browser tests need PARLEY_TEST_BROWSER=1 and Debian's chromium (.ci/run does both)",
)


@pytest.fixture
async def page() -> AsyncIterator[object]:
    if not CHROMIUM_PRESENT:
        pytest.fail(
            f"PARLEY_TEST_BROWSER is set but {CHROMIUM} is missing: "
            "apt-get install -y chromium (never `playwright install`)",
            pytrace=False,
        )
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(viewport={"width": 1200, "height": 800})
        try:
            yield await context.new_page()
        finally:
            await context.close()
            await browser.close()


async def test_a_wrong_password_is_refused(make_console: ConsoleFactory, page: object) -> None:
    from playwright.async_api import Page, expect

    assert isinstance(page, Page)
    console = await make_console(tools=(get_current_time,))
    await page.goto(f"{console.url}/admin/channels")
    assert page.url.endswith("/admin/login")
    await page.fill("input[name=password]", "not the password")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_have_text("Wrong password.")
    await page.screenshot(path=str(ARTIFACTS / "login-refused.png"), full_page=True)


async def test_an_admin_session_in_the_browser(
    make_console: ConsoleFactory, page: object, llm: ScriptedOpenAIServer
) -> None:
    from playwright.async_api import Page, expect

    assert isinstance(page, Page)
    console = await make_console(tools=(get_current_time,))
    llm.set_default(text_reply("It is noon.", usage=(30, 12)))
    await console.app.engine.handle(
        IncomingMessage(chat=ROOM, user=ALICE, text="time?"), RecordingSurface()
    )
    channel_id = await console.app.store.channel_id(ROOM)
    reminder = await console.app.reminders.create(
        ReminderRequest(
            user=ALICE,
            chat=ROOM,
            thread_key="",
            kind="message",
            text="pay the invoices",
            due_at=datetime.now(UTC) + timedelta(hours=2),
            timezone="UTC",
        )
    )

    # Sign in.
    await page.goto(f"{console.url}/admin/login")
    await page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await page.get_by_role("link", name="Channels").click()
    await expect(page.get_by_role("heading", name="Channels")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "channels.png"), full_page=True)

    # Toggle a tool for the channel; the next turn goes without it.
    await page.click(f"a[href='/admin/channels/{channel_id}']")
    await page.get_by_role("button", name="Disable get_current_time").click()
    await expect(page.get_by_role("status")).to_have_text("Saved.")
    await expect(page.locator("#tool-get_current_time")).to_contain_text("disabled")
    await page.screenshot(path=str(ARTIFACTS / "channel.png"), full_page=True)
    await console.app.engine.handle(
        IncomingMessage(chat=ROOM, user=ALICE, text="time again?"), RecordingSurface()
    )
    assert "tools" in llm.requests[0] and "tools" not in llm.requests[1]

    # Users, conversations, a conversation.
    await page.get_by_role("link", name="Users").click()
    await expect(page.get_by_role("cell", name="test:alice")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "users.png"), full_page=True)
    await page.get_by_role("link", name="Conversations").click()
    await page.screenshot(path=str(ARTIFACTS / "conversations.png"), full_page=True)
    await page.get_by_role("link", name="1", exact=True).click()
    await expect(page.get_by_text("It is noon.").first).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "conversation.png"), full_page=True)

    # Cancel a reminder.
    await page.get_by_role("link", name="Reminders").click()
    await expect(page.locator(f"#reminder-{reminder.id}")).to_contain_text("pay the invoices")
    await page.screenshot(path=str(ARTIFACTS / "reminders.png"), full_page=True)
    await page.get_by_role("button", name=f"Cancel reminder {reminder.id}").click()
    await expect(page.get_by_role("status")).to_have_text("Reminder cancelled.")
    await expect(page.locator(f"#reminder-{reminder.id}")).to_have_count(0)
    [info] = await console.app.reminders.list_for(ALICE, include_done=True)
    assert info.status == "cancelled"

    # Read the audit log.
    await page.get_by_role("link", name="Audit log").click()
    rows = page.locator("table tr")
    await expect(rows.nth(1)).to_contain_text("reminder.cancel")
    await expect(rows.nth(2)).to_contain_text("tool.toggle")
    await expect(rows.nth(2)).to_contain_text("test:room-1")
    await page.screenshot(path=str(ARTIFACTS / "audit.png"), full_page=True)

    # The usage chart.
    await page.get_by_role("link", name="Usage").click()
    await expect(page.locator("svg rect").first).to_be_attached()
    await page.screenshot(path=str(ARTIFACTS / "usage.png"), full_page=True)

    # Sign out.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
