"""The console in a real browser: Debian's chromium driven by Playwright.

Logs in, filters the send log, releases a held message and sees it reach the SMTP
sink on loopback, and saves a screenshot of every page into
test-output/console/.  Skipped, saying why, where /usr/bin/chromium is missing
(.ci/run installs it on CI).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from console_support import PASSWORD, Sink, hold_message
from support import free_port

from dlp.console.app import create_app
from dlp.console.services import Services

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "console"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser test skipped: /usr/bin/chromium not installed "
        "(apt-get install chromium; .ci/run does it on CI)",
    ),
]


@pytest.fixture
def base_url(seeded: Services) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        create_app(seeded.settings, seeded), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("console server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_review_flow_in_chromium(base_url: str, seeded: Services, sink: Sink) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    held = hold_message(seeded.settings)
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900}, locale="ja-JP")
            page.set_default_timeout(15_000)

            def shot(name: str) -> None:
                page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

            # Login (anonymous visitors land on the form, with where they were going)
            page.goto(base_url + "/log")
            assert "/login" in page.url
            shot("01-login")
            page.fill("input[name=name]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/log")

            # Dashboard
            page.goto(base_url + "/?days=7")
            # outside, findings, free-mail (issue 14), lookalikes, senders
            assert page.locator("svg.chart").count() == 5
            shot("02-dashboard")

            # Filter the log: with findings, held
            page.goto(base_url + "/log")
            shot("03-log")
            page.select_option("select[name=findings]", "yes")
            page.select_option("select[name=verdict]", "hold")
            page.click("form.filters button[type=submit]")
            page.wait_for_url("**findings=yes**")
            rows = page.locator("table#log tbody tr")
            assert rows.count() == 8  # i % 3 == 0 and not i % 5 == 0, for i < 30
            assert "8 件" in page.inner_text("#total")
            shot("04-log-filtered")

            # One entry
            rows.first.locator("td.time a").click()
            page.wait_for_url("**/log/*")
            assert "QUEUE" in page.inner_text("#audit-key")
            shot("05-entry")

            # Held mail: list, detail, release with a comment
            page.goto(base_url + "/held")
            shot("06-held")
            page.click(f"a[href='/held/{held.id}']")
            page.wait_for_url(f"**/held/{held.id}")
            assert page.locator("table#findings tbody tr").count() >= 1
            shot("07-held-detail")
            page.fill("#release-form textarea[name=comment]", "委託先への送付、課長承認済み")
            page.click("#release-form button[type=submit]")
            page.wait_for_url("**/held?done=held.released**")
            assert sink.wait_for(1), "the released message never reached the sink"
            assert sink.messages[0][1] == ["someone@client.co.jp"]
            shot("08-held-released")

            # Allowlist, with the lookalike warning
            page.goto(base_url + "/allowlist")
            shot("09-allowlist")
            page.fill("#add input[name=domain]", "partmer.co.jp")
            page.fill("#add textarea[name=comment]", "新規取引先")
            page.click("#add button[type=submit]")
            assert page.locator(".notice.warn").count() == 1
            shot("10-allowlist-warning")

            # Chain verification
            page.goto(base_url + "/verify")
            page.click("form[action='/verify'] button[type=submit]")
            page.wait_for_selector("#verify-result")
            assert "改ざんはありません" in page.inner_text("#verify-result")
            shot("14-verify")

            # Users, own password, and the English UI
            page.goto(base_url + "/users")
            shot("11-users")
            page.goto(base_url + "/account")
            shot("13-account")
            page.click("a.lang")
            page.wait_for_url("**/account")
            page.goto(base_url + "/log?findings=yes")
            assert "Send log" in page.inner_text("h1")
            shot("12-log-english")
        finally:
            browser.close()
    for n in ("01-login", "02-dashboard", "07-held-detail", "12-log-english"):
        assert (SHOTS / f"{n}.png").stat().st_size > 5_000
