"""The web console in a real browser (Debian's Chromium, driven by Playwright) against a stack
started as `make demo` starts it: lists and filters, the schedule page's fire times across a
daylight-saving change, its explained timeline, pause and resume, trigger, cancel and retry, a
read-only token, a refused schedule, and axe-core on every page."""

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.console.console_support import (
    GRAFANA_URL,
    PHONE,
    READ_TOKEN,
    DemoStack,
    Tab,
    chromium_browser,
    demo_stack,
    fits,
    open_tab,
    serious_violations,
)
from tests.waiting import eventually

pytestmark = pytest.mark.integration

AUSTIN = "demo-austin-for-sale"
NEVER = "0 0 1 1 *"
"""Once a year: these schedules run when a test triggers them."""
SCREENSHOTS = Path(__file__).parents[2] / "test-artifacts" / "console"
SETTLED = 30_000
"""Milliseconds a page may take to show what a run did (the stack shares 2 cores)."""


def noop(scheduled_job_id: str, name: str, **params: Any) -> dict[str, Any]:
    return {
        "scheduled_job_id": scheduled_job_id,
        "name": name,
        "cron_expression": NEVER,
        "scraper": "noop",
        "params": params,
        "labels": {"team": "console"},
    }


SCHEDULES = [
    noop("console-items", "Five items", items=5),
    noop("console-slow", "Slow to finish", items=1, hold_seconds=300),
    noop("console-failing", "Fails every time", fail_attempts=1),
    {
        **noop("console-ny-monthly", "New York, monthly at 02:30"),
        "cron_expression": "30 2 1 * *",
        "timezone": "America/New_York",
    },
]


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoStack]:
    async with demo_stack(tmp_path_factory.mktemp("console-up")) as running:
        async with running.http() as http:
            for spec in SCHEDULES:
                created = await http.post("/scheduled-jobs", json=spec)
                assert created.status_code == 201, created.text
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with chromium_browser() as running:
        yield running


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """Test artifacts: one picture per page, in a folder git ignores (pytest's temporary
    folders are pruned by the next runs, other sessions' too)."""
    folder = SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def tab(browser: Browser) -> AsyncIterator[Tab]:
    opened = await open_tab(browser)
    yield opened
    await opened.close()
    assert opened.errors == [], "the page threw"


async def visit(page: Page, stack: DemoStack, route: str) -> None:
    await page.goto(f"{stack.api_url}/ui/#{route}")


async def trigger(stack: DemoStack, scheduled_job_id: str) -> str:
    async with stack.http() as http:
        answer = await http.post("/scrape/trigger", json={"scheduled_job_id": scheduled_job_id})
    assert answer.status_code == 200, answer.text
    job_id: str = answer.json()["job_id"]
    return job_id


async def recorded_runs(stack: DemoStack, scheduled_job_id: str) -> list[dict[str, Any]]:
    """The runs the recorder keeps on the schedule's document (its run-history strip)."""
    async with stack.http() as http:
        answer = await http.get(f"/scheduled-jobs/{scheduled_job_id}")
    if answer.status_code != 200:
        return []
    runs: list[dict[str, Any]] = answer.json()["scheduled_job"]["recent_runs"]
    return runs


async def test_the_schedule_list_loads_searches_and_filters(stack: DemoStack, tab: Tab) -> None:
    page = tab.page
    # The list is read once, not followed: load it once the demo's first run is recorded.
    await eventually(
        lambda: recorded_runs(stack, AUSTIN),
        lambda runs: any(run["status"] == "completed" for run in runs),
        within=SETTLED / 1000,
        what="a completed run recorded",
    )
    await visit(page, stack, "/schedules")
    rows = page.locator("table.schedules tbody tr")
    await expect(rows.filter(has_text=AUSTIN)).to_have_count(1)
    await expect(rows.filter(has_text="console-items")).to_have_count(1)
    # The demo schedules have run: each row's strip and last run say so.
    austin = rows.filter(has_text=AUSTIN)
    await expect(austin.locator(".strip .mark-completed").first).to_be_visible()

    await page.get_by_label("Search id or name").fill("denver RENTALS")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("demo-denver-for-rent")

    await page.get_by_label("Search id or name").fill("")
    await page.get_by_label("Labels").fill("team=console")
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_count(len(SCHEDULES))
    await expect(rows.filter(has_text=AUSTIN)).to_have_count(0)

    await page.get_by_label("Status").select_option("paused")
    await expect(page.get_by_text("No schedule matches.")).to_be_visible()


async def test_a_schedule_page_marks_the_daylight_saving_change_among_its_fire_times(
    stack: DemoStack, tab: Tab
) -> None:
    page = tab.page
    await visit(page, stack, "/schedules/console-ny-monthly")
    fires = page.locator("ol.fires li")
    await expect(fires).to_have_count(10)
    words = "at 02:30 on day 1 of every month, America/New_York"
    await expect(page.get_by_text(words)).to_be_visible()
    # Ten months always hold a change of New York's clocks: the first fire after it is
    # marked, with the new offset, and its wall time stays 02:30.
    changed = page.locator("ol.fires li.dst")
    await expect(changed.first).to_contain_text("clock change")
    text = await changed.first.inner_text()
    assert re.search(r"02:30:00 UTC-0[45]:00", text), text
    texts = [await fire.inner_text() for fire in await fires.all()]
    assert all("02:30:00" in text for text in texts), texts
    offsets = {found.group(1) for text in texts if (found := re.search(r"UTC(-0[45]:00)", text))}
    assert offsets == {"-05:00", "-04:00"}


async def test_pause_with_a_note_then_resume_changes_the_kv_spec_and_the_page(
    stack: DemoStack, tab: Tab
) -> None:
    page = tab.page
    await visit(page, stack, f"/schedules/{AUSTIN}")
    await page.get_by_role("button", name="Pause").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Note").fill("site under maintenance")
    await dialog.get_by_role("button", name="Pause").click()

    await expect(page.get_by_test_id("paused-note")).to_contain_text("site under maintenance")
    spec = await stack.spec_in_kv(AUSTIN)
    assert spec is not None
    assert (spec["status"], spec["paused_reason"]) == ("paused", "site under maintenance")
    # Triggered while paused: it runs (asked with `force`), says so, and stays paused.
    await page.get_by_role("button", name="Trigger now (stays paused)").click()
    await expect(page.get_by_role("status").filter(has_text="although paused")).to_be_visible()
    await expect(page.locator(".heading .badge")).to_have_text("paused")

    await page.get_by_role("button", name="Resume").click()
    await expect(page.get_by_test_id("paused-note")).to_have_count(0)
    await expect(page.locator(".heading .badge")).to_have_text("active")
    resumed = await stack.spec_in_kv(AUSTIN)
    assert resumed is not None
    assert (resumed["status"], resumed.get("paused_reason")) == ("active", None)


async def test_trigger_now_shows_the_run_live_until_completed_with_its_items(
    stack: DemoStack, browser: Browser, tab: Tab
) -> None:
    runs = tab.page
    await visit(runs, stack, "/runs")
    await expect(runs.get_by_text("Updates: live")).to_be_visible()
    await runs.evaluate("window.notReloaded = true")

    other = await open_tab(browser)
    try:
        await visit(other.page, stack, "/schedules/console-items")
        await other.page.get_by_role("button", name="Trigger now").click()
        notice = other.page.get_by_role("status").filter(has_text="Triggered")
        await expect(notice).to_be_visible()
        said = re.search(r"run (\S+)\.", await notice.inner_text())
        assert said is not None
        job_id = said.group(1)
    finally:
        await other.close()

    row = runs.locator(f'tr[data-job-id="{job_id}"]')
    await expect(row).to_have_attribute("data-status", "completed", timeout=SETTLED)
    assert await runs.evaluate("window.notReloaded") is True, "the list was reloaded"
    await row.get_by_role("link", name=job_id).click()
    await expect(runs.get_by_test_id("items-scraped")).to_have_text("5")
    await expect(runs.get_by_test_id("items-saved")).to_have_text("5", timeout=SETTLED)


async def test_cancel_a_slow_run_from_its_page(stack: DemoStack, tab: Tab) -> None:
    page = tab.page
    job_id = await trigger(stack, "console-slow")
    await visit(page, stack, f"/runs/{job_id}")
    badge = page.locator(".heading .badge")
    await expect(badge).to_have_text("running", timeout=SETTLED)
    await page.get_by_role("button", name="Cancel run").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Reason").fill("too slow")
    await dialog.get_by_role("button", name="Cancel run").click()
    await expect(badge).to_have_text("cancelled", timeout=SETTLED)
    await expect(page.get_by_text("too slow", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Retry")).to_be_visible()


async def test_retry_a_failed_run_from_its_page(stack: DemoStack, tab: Tab) -> None:
    page = tab.page
    failed = await trigger(stack, "console-failing")
    await visit(page, stack, f"/runs/{failed}")
    await expect(page.locator(".heading .badge")).to_have_text("failed", timeout=SETTLED)
    await expect(page.get_by_role("region", name="Error")).to_contain_text("fails attempt 1")
    await expect(page.locator("table").first).to_contain_text("RuntimeError")
    await page.get_by_role("button", name="Retry").click()

    await expect(page).not_to_have_url(re.compile(f"#/runs/{failed}$"))
    await expect(page.get_by_role("region", name="Timings")).to_contain_text(f"retry of {failed}")
    retry = page.url.rsplit("/", 1)[1]
    async with stack.http() as http:
        again = await http.get(f"/api/v1/executions/{retry}")
    assert again.json()["retry_of"] == failed


async def test_a_read_only_token_sees_no_write_control_and_a_forged_write_is_refused(
    stack: DemoStack, browser: Browser
) -> None:
    reader = await open_tab(browser, READ_TOKEN)
    page = reader.page
    try:
        finished = await trigger(stack, "console-items")
        for route, shown in (
            ("/schedules", "console-items"),
            ("/schedules/console-items", "Next fire times"),
            (f"/runs/{finished}", "Timings"),
            ("/new", "may only read"),
        ):
            await visit(page, stack, route)
            await expect(page.get_by_role("main")).to_contain_text(shown, timeout=SETTLED)
            await expect(page.get_by_text("read only")).to_be_visible()
            for control in ("New schedule", "Pause", "Resume", "Trigger now", "Backfill…",
                            "Edit", "Delete…", "Cancel run", "Retry", "Create"):  # fmt: skip
                assert await page.get_by_role("button", name=control, exact=True).count() == 0
                assert await page.get_by_role("link", name=control, exact=True).count() == 0
        forged = await page.evaluate(
            """async () => (await fetch('/api/v1/jobs/console-items/pause', {
                method: 'POST', headers: {Authorization: 'Bearer ' + sessionStorage.getItem(
                'natscron.token'), 'Content-Type': 'application/json'}, body: '{}'})).status"""
        )
        assert forged == 403
        spec = await stack.spec_in_kv("console-items")
        assert spec is not None and spec["status"] == "active"
    finally:
        await reader.close()
    assert reader.errors == []


async def test_creating_a_schedule_with_a_bad_cron_names_the_field_and_writes_nothing(
    stack: DemoStack, tab: Tab
) -> None:
    page = tab.page
    await visit(page, stack, "/new")
    await page.get_by_label("Id").fill("console-bad-cron")
    await page.get_by_label("Name").fill("A bad cron")
    await page.get_by_label("Cron expression").fill("61 * * * *")
    await page.get_by_label("Scraper", exact=True).fill("noop")
    await page.get_by_role("button", name="Create").click()

    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text("Nothing was written")
    await expect(alert.get_by_role("link", name="Cron expression")).to_be_visible()
    cron = page.get_by_label("Cron expression")
    await expect(cron).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#cron_expression-problem")).to_contain_text("61 is outside 0-59")
    assert await stack.spec_in_kv("console-bad-cron") is None
    async with stack.http() as http:
        assert (await http.get("/scheduled-jobs/console-bad-cron/spec")).status_code == 404

    await cron.fill("*/5 * * * *")
    await page.get_by_role("button", name="Create").click()
    await expect(page.locator(".heading .badge")).to_have_text("active")
    written = await eventually(
        lambda: stack.spec_in_kv("console-bad-cron"), what="the corrected schedule in KV"
    )
    assert written is not None and written["cron_expression"] == "*/5 * * * *"


async def test_signing_in_keeps_the_token_for_the_tab(stack: DemoStack, browser: Browser) -> None:
    visitor = await open_tab(browser, token=None)
    page = visitor.page
    try:
        await visit(page, stack, "/system")
        await page.get_by_label("Bearer token").fill("not-a-token-of-this-api")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("unauthorized")
        await page.get_by_label("Bearer token").fill(READ_TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_test_id("leader")).to_contain_text("leads since")
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("Bearer token")).to_be_visible()
        assert await page.evaluate("sessionStorage.getItem('natscron.token')") is None
    finally:
        await visitor.close()
    assert visitor.errors == []


async def test_every_page_has_no_serious_accessibility_violation_and_fits_a_phone(
    stack: DemoStack, browser: Browser, screenshots: Path
) -> None:
    finished = await trigger(stack, "console-items")
    pages = {
        "schedules": ("/schedules", "Recent runs"),
        "schedule": (f"/schedules/{AUSTIN}", "Statistics"),
        "new-schedule": ("/new", "Other fields"),
        "edit-schedule": ("/schedules/console-items/edit", "Other fields"),
        "runs": ("/runs", "Updates: live"),
        "run": (f"/runs/{finished}", "Attempts"),
        "system": ("/system", "leads since"),
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for viewport, size in (("desktop", None), ("phone", PHONE)):
        opened = await (open_tab(browser) if size is None else open_tab(browser, viewport=size))
        try:
            for name, (route, shown) in pages.items():
                await visit(opened.page, stack, route)
                await expect(opened.page.get_by_role("main")).to_contain_text(shown)
                await opened.page.screenshot(
                    path=screenshots / f"{name}-{viewport}.png", full_page=True
                )
                found[f"{name} ({viewport})"] = await serious_violations(opened.page)
                if size is not None:
                    assert await fits(opened.page), f"{name} scrolls sideways at 375 px"
            if size is None:
                await expect(
                    opened.page.get_by_role("link", name="natscron in Grafana")
                ).to_have_attribute("href", f"{GRAFANA_URL}/d/natscron")
        finally:
            await opened.close()
        assert opened.errors == []
    signed_out = await open_tab(browser, token=None)
    try:
        await visit(signed_out.page, stack, "/schedules")
        await expect(signed_out.page.get_by_label("Bearer token")).to_be_visible()
        await signed_out.page.screenshot(path=screenshots / "sign-in.png")
        found["sign-in"] = await serious_violations(signed_out.page)
    finally:
        await signed_out.close()
    assert {page: seen for page, seen in found.items() if seen} == {}


async def fired_slots(stack: DemoStack, scheduled_job_id: str) -> dict[str, str]:
    """The job id and status of each fired slot of the last hour, as the API explains them."""
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    async with stack.http() as http:
        answer = await http.get(
            f"/scheduled-jobs/{scheduled_job_id}/explain", params={"from": since}
        )
    assert answer.status_code == 200, answer.text
    return {
        slot["run"]["job_id"]: slot["run"]["status"]
        for slot in answer.json()["slots"]
        if slot["outcome"] == "fired"
    }


async def test_a_schedule_timeline_shows_fired_slots_linking_to_their_runs(
    stack: DemoStack, browser: Browser, screenshots: Path
) -> None:
    await eventually(
        lambda: fired_slots(stack, AUSTIN),
        lambda fired: "completed" in fired.values(),
        within=SETTLED / 1000,
        what="a completed slot in the explained timeline",
    )
    for viewport, size in (("desktop", None), ("phone", PHONE)):
        opened = await (open_tab(browser) if size is None else open_tab(browser, viewport=size))
        try:
            page = opened.page
            await visit(page, stack, f"/schedules/{AUSTIN}")
            timeline = page.get_by_role("region", name="Slots, newest first")
            completed = timeline.locator('li[data-outcome="fired"]').filter(
                has_text="fired: completed"
            )
            await expect(completed.first).to_be_visible(timeout=SETTLED)
            await expect(page.get_by_role("list", name="Slots by outcome")).to_contain_text("fired")
            await expect(page.get_by_role("button", name="Last hour")).to_have_attribute(
                "aria-pressed", "true"
            )
            await page.screenshot(path=screenshots / f"timeline-{viewport}.png", full_page=True)
            assert await serious_violations(page) == [], viewport
            if size is not None:
                assert await fits(page), "the timeline scrolls sideways at 375 px"
            link = completed.first.get_by_role("link")
            job_id = (await link.inner_text()).strip()
            assert (await fired_slots(stack, AUSTIN)).get(job_id) == "completed", job_id
            await expect(link).to_have_attribute("href", f"#/runs/{job_id}")
            await link.click()
            await expect(page.get_by_role("heading", level=1)).to_have_text(f"Run {job_id}")
        finally:
            await opened.close()
        assert opened.errors == []


async def test_a_timeline_range_with_too_many_slots_asks_for_a_shorter_one(
    stack: DemoStack, tab: Tab
) -> None:
    page = tab.page
    await visit(page, stack, f"/schedules/{AUSTIN}")
    await expect(page.get_by_role("region", name="Slots, newest first")).to_be_visible(
        timeout=SETTLED
    )
    # Every 10 s: a day holds 8,640 slots, more than the API explains at once.
    await page.get_by_role("button", name="Last day").click()
    refused = page.get_by_test_id("too-many-slots")
    await expect(refused).to_contain_text("at most 1000")
    await expect(refused).to_contain_text("Choose a shorter range")
    await page.get_by_role("button", name="Last hour").click()
    await expect(refused).to_have_count(0)
    await expect(page.get_by_role("region", name="Slots, newest first")).to_be_visible()
