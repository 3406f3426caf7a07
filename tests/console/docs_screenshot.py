"""The screenshot of the console in docs/ and the README: the schedule list of `make demo`
(`natscron up --demo`, open access) once its schedules have run for a while, in Debian's
Chromium at 1280 px.

    .venv/bin/python -m tests.console.docs_screenshot docs/console.png
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.async_api import expect

from tests.console.console_support import chromium_browser, demo_stack, open_tab
from tests.waiting import eventually

RUNS_SHOWN = 6
"""Marks in the Austin schedule's run strip before the picture is taken (a run every 10 s)."""
WAIT_SECONDS = 180.0


async def take(path: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        async with demo_stack(Path(folder), tokens=False) as stack, chromium_browser() as browser:
            tab = await open_tab(browser, token=None)
            page = tab.page
            await page.goto(f"{stack.api_url}/ui/#/schedules")
            marks = page.locator("table.schedules tbody tr .strip .mark")

            async def shown() -> int:
                """The list does not follow runs: read it again."""
                await page.reload()
                await expect(page.locator("table.schedules tbody tr")).not_to_have_count(0)
                return await marks.count()

            await eventually(
                shown, lambda count: count >= RUNS_SHOWN, within=WAIT_SECONDS, what="runs"
            )
            await page.set_viewport_size({"width": 1280, "height": 480})
            await page.screenshot(path=str(path))
            await tab.close()


if __name__ == "__main__":
    asyncio.run(take(Path(sys.argv[1])))
