"""Browser tests: Debian's Chromium driven by Playwright against a live server on localhost.

A missing browser skips these tests on a developer's machine and fails them when
FVAPP_REQUIRE_BROWSER is set (CI sets it): in CI they must run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import pytest

from tests.support.net import live

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

# Every page reports its CSP violations to the test as they happen, through a binding that
# outlives navigations: a violation on page A is still counted after the test has moved on to B.
CSP_PROBE = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.__fvReportCsp([e.violatedDirective, e.blockedURI || 'inline', e.sourceFile + ':' + e.lineNumber,
                        'on ' + location.href].join(' '));
});
"""


@pytest.fixture(scope="package")
def chromium():
    # Package scope: Playwright's sync API keeps an event loop running in this thread while it
    # is open, and MCP serves each call on its loop in the request's thread; the browser stops
    # when the browser tests are done, before the tests after them run.
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("FVAPP_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@contextlib.contextmanager
def serve(server_app):
    """Serve the app on a free localhost port for the block; yields its base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with live(server_app) as base:
        yield base


@pytest.fixture
def live_server(app_factory, demo):
    with serve(app_factory()) as base:
        yield base


class Watch:
    """Console errors and CSP violations seen by a page, on every document it has shown."""

    def __init__(self, page):
        self.page = page
        self.console_errors: list[str] = []
        self.violations: list[str] = []
        page.expose_binding("__fvReportCsp", lambda source, report: self.violations.append(report))
        page.add_init_script(CSP_PROBE)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))

    def _console(self, message):
        if message.type != "error":
            return
        text = message.text
        # Chromium logs every 4xx fetch (a 422 validation answer, say) as a console error.
        if "Failed to load resource: the server responded with a status of 4" in text:
            return
        self.console_errors.append(text)

    def csp_violations(self) -> list[str]:
        # A round trip to the page first: reports already sent are delivered before it returns.
        with contextlib.suppress(Exception):  # closed or navigating: nothing more to wait for
            self.page.evaluate("0")
        return list(self.violations)

    def assert_clean(self):
        assert self.csp_violations() == []
        assert self.console_errors == []


@pytest.fixture
def page_factory(chromium, live_server):
    contexts = []

    def factory(viewport=None, javascript=True):
        context = chromium.new_context(
            base_url=live_server, viewport=viewport or DESKTOP, locale="en-US",
            java_script_enabled=javascript,
        )
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        return page, Watch(page)

    yield factory
    for context in contexts:
        context.close()


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot under artifacts/. The caret is left alone: hiding it injects a <style>
    that our CSP blocks, which would count as a violation whenever a field has focus. Dialogs
    are shot at viewport size (full_page=False), where their backdrop covers the page."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if full_page:  # a sticky header lands mid-page in a full-page shot taken scrolled down
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page, caret="initial")
    return path


def login(page, email, password="correct-horse-battery"):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
