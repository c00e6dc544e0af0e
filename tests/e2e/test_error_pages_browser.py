"""Error pages in the app shell: signed in, a 403, 404, 500 or 503 keeps the
header and the main navigation, says nothing more (a member's 404 on the keys URL is the
same 404 as any unknown page), and has no serious or critical axe violation at desktop or phone
width. Signed out, the same pages have no shell. The 500 and 503 come from two routes this
module adds to its own server: a bug, and a database that refuses connections."""

import logging

import pytest
from playwright.sync_api import expect
from sqlalchemy import exc as sa_exc

from fvapp.services import accounts

from .axe import audit
from .conftest import DESKTOP, PHONE, login, screenshot, serve


def _bug():
    raise RuntimeError("a bug, for the 500 page")


def _database_down():
    raise sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


@pytest.fixture
def live_server(app_factory, demo):
    """conftest's live server, plus /test/bug (500) and /test/database-down (503)."""
    server_app = app_factory()
    server_app.add_url_rule("/test/bug", "test_bug", _bug)
    server_app.add_url_rule("/test/database-down", "test_database_down", _database_down)
    errors_log = logging.getLogger("fvapp.errors")
    errors_log.setLevel(logging.CRITICAL)  # the 500's traceback is expected here
    try:
        with serve(server_app) as base:
            yield base
    finally:
        errors_log.setLevel(logging.NOTSET)


def in_the_shell(page, signed_in_as=None):
    main_nav = page.get_by_role("navigation", name="Main")
    expect(main_nav.get_by_role("link", name="Initiatives", exact=True)).to_be_visible()
    expect(main_nav.get_by_role("link", name="Settings", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    if signed_in_as:
        expect(page.locator(".user-name")).to_have_text(signed_in_as)


def expect_error(page, path, status, heading):
    response = page.goto(path)
    assert response.status == status, (path, response.status)
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator(".status-code")).to_have_text(str(status))


def server_errors_only(watch):
    # Chromium logs the document's own 5xx as a console error; nothing else may appear.
    watch.console_errors[:] = [e for e in watch.console_errors
                               if "the server responded with a status of 50" not in e]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_error_pages_sit_in_the_app_shell_and_pass_axe(app_context, page_factory, demo, backend, width):
    accounts.create_user("nomad@acme.test", "Nora Nomad", "correct-horse-battery")
    viewport = DESKTOP if width == "desktop" else PHONE
    found: list[str] = []

    page, watch = page_factory(viewport=viewport)
    expect_error(page, "/no-such-page", 404, "Not found")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)  # signed out: no shell
    audit(page, "404 signed out", found)
    expect_error(page, "/test/bug", 500, "Something is off")
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)

    login(page, "mia@acme.test")  # a member: the keys URL is an ordinary 404
    for path in ["/settings/api-keys", "/settings/no-such-page"]:
        expect_error(page, path, 404, "Not found")
        in_the_shell(page, "Mia Member")
        expect(page.get_by_role("main")).not_to_contain_text("API key")
    audit(page, "404 signed in", found)
    screenshot(page, f"error-404-shell-{width}-{backend}")

    expect_error(page, "/test/bug", 500, "Something is off")
    in_the_shell(page, "Mia Member")
    expect(page.get_by_role("main")).not_to_contain_text("RuntimeError")
    audit(page, "500", found)

    # No database: the shell from the session alone, without the name (that needs a query).
    expect_error(page, "/test/database-down", 503, "Unavailable")
    in_the_shell(page)
    expect(page.locator(".user-name")).to_have_count(0)
    audit(page, "503", found)
    screenshot(page, f"error-503-shell-{width}-{backend}")

    # Someone in no workspace yet: 403, with the reason, in the shell.
    other, other_watch = page_factory(viewport=viewport)
    login(other, "nomad@acme.test")
    expect(other.get_by_role("heading", level=1)).to_have_text("No access")
    expect(other.get_by_role("main")).to_contain_text("not a member of any workspace yet")
    in_the_shell(other, "Nora Nomad")
    audit(other, "403", found)

    assert found == [], "\n".join(found)
    server_errors_only(watch)
    watch.assert_clean()
    other_watch.assert_clean()
