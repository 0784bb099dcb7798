"""The dashboard in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium) against the
whole running system (the session's stack, tests/conftest.py).

Skipped, saying why, when Chromium is not installed or the dashboard cannot be built (no Node.js);
`make test` installs Chromium (as root, from Debian) and builds the dashboard first. Every page a test
opens is checked for console errors and uncaught exceptions; a test that expects an HTTP error (a
wrong key's 401) names its status. Screenshots go to .data/screenshots/, and with UPDATE_SCREENSHOTS=1
(`make screenshots`) to docs/screenshots/, which the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from scripts import dashboard as dashboard_build
from scripts.stack import ROOT

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
_FAILED_RESOURCE = re.compile(r"status of (\d{3})")


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def dashboard_built() -> None:
    """The dashboard's build, made now if stale; skips the browser tests when Node.js is missing."""
    try:
        dashboard_build.build()
    except dashboard_build.NodeMissing as exc:
        pytest.skip(f"browser tests skipped: {exc}")


@pytest.fixture(scope="package")
def browser(dashboard_built: None, stack) -> Iterator[object]:  # type: ignore[no-untyped-def]
    # Playwright's sync API holds an event loop in this thread while it runs: started after the stack
    # (which runs asyncio itself) and stopped with this package, before other tests use asyncio.
    path = chromium_path()
    if path is None:
        pytest.skip("browser tests skipped: Chromium is not installed (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class ConsoleWatch:
    """Console errors and page exceptions of a page; HTTP failures the test expects are allowed."""

    expected_statuses: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def expect_status(self, *statuses: int) -> None:
        self.expected_statuses.update(statuses)

    def on_console(self, message: object) -> None:
        if getattr(message, "type", "") != "error":
            return
        text = str(getattr(message, "text", ""))
        status = _FAILED_RESOURCE.search(text)
        if "Failed to load resource" in text and status and int(status.group(1)) in self.expected_statuses:
            return
        self.problems.append(f"console error: {text}")

    def on_page_error(self, error: object) -> None:
        self.problems.append(f"uncaught exception: {error}")


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(browser, stack, console: ConsoleWatch) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh browser context (own sessionStorage) at 1280 px wide; fails on any console error."""
    context = browser.new_context(viewport=DESKTOP, base_url=stack.base_url)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.on("console", console.on_console)
    tab.on("pageerror", console.on_page_error)
    try:
        yield tab
    finally:
        context.close()
    assert not console.problems, "\n".join(console.problems)


def screenshot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Save a screenshot of the whole page: .data/screenshots/, or docs/screenshots/ for the README."""
    folder = ROOT / ("docs/screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else ".data/screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
