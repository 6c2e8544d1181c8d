"""The dashboard in a real browser (headless Chromium from Debian, driven by Selenium):
every page renders without console errors, the overview updates itself while a pass
records builds, the lineage graph links to the parents, actions work through the UI with
the token, and hostile names and metadata stay text."""

from __future__ import annotations

import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from dbproc.web.server import BackgroundServer
from tests.helpers import CliHarness, drop
from tests.web.conftest import TOKEN
from tests.web.test_api import _failed_run, _retries

WAIT = 30  # seconds: the bound of every wait on the page (a poll, not a sleep)
SCREENSHOTS = os.environ.get("DBPROC_SCREENSHOTS")  # a folder: save each page's PNG there


def console_errors(driver: WebDriver) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def visit(driver: WebDriver, server: BackgroundServer, path: str) -> None:
    driver.get(server.url + path)
    WebDriverWait(driver, WAIT).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def text_of(driver: WebDriver, element_id: str) -> str:
    """An element's text read in one step (live updates swap elements at any moment)."""
    return str(
        driver.execute_script(
            "const e = document.getElementById(arguments[0]); return e ? e.textContent : '';",
            element_id,
        )
    )


def wait_live(driver: WebDriver) -> None:
    """Until the page's live stream is connected."""
    WebDriverWait(driver, WAIT).until(
        lambda d: text_of(d, "live-status") == "live",
        message=f"{driver.current_url} never went live: {driver.get_log('browser')}",
    )


def test_every_page_renders_without_console_errors(
    built: CliHarness, server: BackgroundServer, browser: WebDriver
) -> None:
    failed = _failed_run(built)  # L2 of 2016-01-02: a failed rebuild
    drop(built.incoming, "not-a-product.dat", "nobody claims this\n")
    built.ok("run", code=3)  # ... and a rejected file
    l1 = "testDB_20160103_v1.0.0.cat"
    pages = {
        "overview": "/",
        "product": "/products/L2?period=2016-01",
        "product-year": "/products/L1?period=2016",
        "day": "/products/L1/2016-01-03",
        "file": f"/files/{l1}",
        "run": f"/runs/{failed}",
        "failures": "/failures",
        "review": "/review",
    }
    browser.get_log("browser")
    for name, path in pages.items():
        visit(browser, server, path)
        wait_live(browser)
        assert browser.find_element(By.TAG_NAME, "h1").text, path
        assert console_errors(browser) == [], path
        if SCREENSHOTS:
            browser.save_screenshot(str(Path(SCREENSHOTS) / f"dashboard-{name}.png"))
    visit(browser, server, "/products/L2?period=2016-01")
    cells = browser.find_elements(By.CSS_SELECTOR, "#coverage-grid .cell.present")
    assert [c.get_attribute("data-date") for c in cells] == [
        "2016-01-01",
        "2016-01-03",
        "2016-01-04",
    ]
    (bad,) = browser.find_elements(By.CSS_SELECTOR, "#coverage-grid .cell.failed")
    assert bad.get_attribute("data-date") == "2016-01-02" and f"run {failed}" in bad.text
    visit(browser, server, "/failures")
    assert f"{failed}" in browser.find_element(By.ID, "failed-runs").text
    assert "not-a-product.dat" in browser.find_element(By.ID, "rejects").text
    visit(browser, server, "/review")
    assert "no product has a review gate" in browser.find_element(By.ID, "no-review").text
    visit(browser, server, f"/runs/{failed}")
    assert "behave.py" in browser.find_element(By.ID, "command-line").text
    assert "boom: cannot calibrate" in browser.find_element(By.ID, "stderr").text
    assert "exit code 7" in browser.find_element(By.ID, "run-exit").text


def test_overview_updates_itself_while_a_pass_runs(
    built: CliHarness, server: BackgroundServer, browser: WebDriver
) -> None:
    visit(browser, server, "/")
    wait_live(browser)
    before = int(text_of(browser, "total-files"))
    browser.execute_script("window.__noReload = 'still this page';")
    drop(built.incoming, "testDB_000_004.raw", "day five\n")
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(r=built.run("run")))
    worker.start()
    try:
        WebDriverWait(browser, WAIT).until(lambda d: int(text_of(d, "total-files") or 0) > before)
    finally:
        worker.join(120)
    assert result["r"].exit_code == 0, result["r"].output
    # every record of the pass shows up, without a reload of the page
    total = sum(p["files"] for p in built.json("status", "--json")["files"].values())
    WebDriverWait(browser, WAIT).until(lambda d: int(text_of(d, "total-files") or 0) == total)
    assert browser.execute_script("return window.__noReload") == "still this page"
    assert console_errors(browser) == []


def test_lineage_graph_links_to_the_parents(
    built: CliHarness, server: BackgroundServer, browser: WebDriver
) -> None:
    name = "testDB_20160103_v1.0.0.cat"
    parents = built.json("lineage", name, "--json")["parents"]
    visit(browser, server, f"/files/{name}")
    nodes = browser.find_elements(By.CSS_SELECTOR, "#lineage-graph svg a[data-filename]")
    shown = {n.get_attribute("data-filename") for n in nodes}
    assert set(parents) <= shown and name in shown
    target = next(n for n in nodes if n.get_attribute("data-filename") == parents[0])
    target.click()
    WebDriverWait(browser, WAIT).until(
        lambda d: urllib.parse.unquote(d.current_url).endswith(f"/files/{parents[0]}")
    )
    assert browser.find_element(By.ID, "file-name").text == parents[0]
    # the raw file's children include the file we came from; expanding adds hops
    assert name in browser.find_element(By.ID, "children").text
    browser.find_element(By.ID, "more-hops").click()
    WebDriverWait(browser, WAIT).until(lambda d: "hops=3" in d.current_url)
    assert console_errors(browser) == []


def test_retry_through_the_ui_needs_the_token(
    built: CliHarness, token_file: Path, browser: WebDriver
) -> None:
    from tests.web.conftest import start_dashboard

    run_id = _failed_run(built)
    server = start_dashboard(built, token_file)
    try:
        visit(browser, server, f"/runs/{run_id}")
        form = browser.find_element(By.ID, "retry-form")
        form.find_element(By.NAME, "token").send_keys("not-the-token-at-all")
        form.find_element(By.TAG_NAME, "button").click()
        output = form.find_element(By.TAG_NAME, "output")
        WebDriverWait(browser, WAIT).until(lambda d: output.text.startswith("403"))
        assert _retries(built) == 0
        browser.get_log("browser")  # the 403 is logged as a failed request: expected
        field = form.find_element(By.NAME, "token")
        field.clear()
        field.send_keys(TOKEN)
        form.find_element(By.NAME, "by").send_keys("ana")
        form.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(browser, WAIT).until(lambda d: output.text.startswith("done"))
        assert _retries(built) == 1
    finally:
        server.stop()


def test_read_only_pages_offer_no_actions(
    built: CliHarness, server: BackgroundServer, browser: WebDriver
) -> None:
    run_id = _failed_run(built)
    visit(browser, server, f"/runs/{run_id}")
    assert browser.find_elements(By.ID, "retry-form") == []
    assert browser.find_element(By.CSS_SELECTOR, "header .read-only").text == "read-only"


HOSTILE = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


def test_hostile_names_and_metadata_stay_text(
    built: CliHarness, server: BackgroundServer, browser: WebDriver
) -> None:
    """An inspector's metadata with <script> and a rejected file named like markup are
    shown as text: nothing of them runs."""
    drop(built.incoming, "testDB_000_004.raw", HOSTILE + "\n")
    drop(built.incoming, "<img src=x onerror=window.__pwned=3>.raw", "junk\n")
    built.ok("run", code=3)  # the second one is refused
    (raw,) = built.json("files", "--product", "L0_first", "--since", "2016-01-05", "--json")
    assert raw["metadata"]["first_line"] == HOSTILE
    for path in (f"/files/{raw['filename']}", "/failures", "/"):
        visit(browser, server, path)
        wait_live(browser)
        assert browser.execute_script("return window.__pwned === undefined"), path
        assert browser.find_elements(By.CSS_SELECTOR, "main img") == [], path
        assert browser.find_elements(By.CSS_SELECTOR, "main script") == [], path
    visit(browser, server, f"/files/{raw['filename']}")
    assert HOSTILE in browser.find_element(By.ID, "metadata").text
    visit(browser, server, "/failures")
    assert "<img src=x onerror=window.__pwned=3>.raw" in browser.find_element(By.ID, "rejects").text
    assert console_errors(browser) == []


@pytest.fixture(autouse=True)
def _fresh_log(browser: WebDriver) -> None:
    """Each test starts with an empty console log."""
    browser.get("about:blank")
    browser.get_log("browser")
