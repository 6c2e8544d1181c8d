"""Fixtures of the dashboard tests: a built example mission, the dashboard on a free
loopback port, and headless Chromium driven by Selenium (offline)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import CliHarness

pytest.importorskip("starlette", reason="the web extra is not installed")

from dbproc.web.server import BackgroundServer, dashboard_for  # noqa: E402

CHROMIUM = os.environ.get("DBPROC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DBPROC_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture
def built(applied: CliHarness) -> CliHarness:
    """The example mission after one full pass."""
    applied.ok("run")
    return applied


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


def start_dashboard(cli: CliHarness, token_file: Path | None = None) -> BackgroundServer:
    """The dashboard of ``cli``'s database (actions on when a token file is given)."""
    dashboard = dashboard_for(
        cli.db, allow_actions=token_file is not None, token_file=token_file, poll_seconds=0.3
    )
    return BackgroundServer(dashboard).start()


@pytest.fixture
def server(built: CliHarness) -> Iterator[BackgroundServer]:
    """A read-only dashboard of the built example."""
    running = start_dashboard(built)
    yield running
    running.stop()


@pytest.fixture
def action_server(built: CliHarness, token_file: Path) -> Iterator[BackgroundServer]:
    """A dashboard of the built example with actions allowed."""
    running = start_dashboard(built, token_file)
    yield running
    running.stop()


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return f"{path} is not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """One headless Chromium for the session; its console log is read by the tests."""
    reason = _browser_missing()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-extensions",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
