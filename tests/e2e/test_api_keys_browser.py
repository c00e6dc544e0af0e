"""Settings → API Keys in Chromium, as a person uses it: create, copy, reveal once, revoke; the
role and plan gates; the same actions with JavaScript off. Screenshots of every step."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from fvapp.extensions import db
from fvapp.models import utcnow
from fvapp.services import keys

from .conftest import DESKTOP, PHONE, login, screenshot

KEY = re.compile(r"fvk_live_[0-9A-Za-z]{38}")
STORAGE = "() => JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
CONFIRM_TEXT = "Any application using it loses access on its next request. This cannot be undone."


def seed_history(demo):
    """A lived-in table: a key used three hours ago and one revoked yesterday."""
    ava = demo.user("ava@acme.test")
    used = keys.create_key(demo.acme.id, ava.id, "Nightly export").key
    used.last_used_at = utcnow() - timedelta(hours=3)
    db.session.commit()
    old = keys.create_key(demo.acme.id, ava.id, "Old laptop script").key
    keys.revoke_key(demo.acme.id, old.id, ava.id)


def open_api_keys(page):
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="API Keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()


def assert_no_key_in_storage(page):
    assert "fvk_live_" not in page.evaluate(STORAGE)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_admin_creates_copies_and_revokes_a_key(app_context, page_factory, demo, backend, width):
    seed_history(demo)
    page, watch = page_factory(viewport=DESKTOP if width == "desktop" else PHONE)
    shot = f"{width}-{backend}"
    login(page, "adam@acme.test")
    open_api_keys(page)
    expect(page.get_by_text("1 of 10 active keys")).to_be_visible()
    expect(page.get_by_role("heading", name="Security guidance")).to_be_visible()
    screenshot(page, f"api-keys-page-{shot}")

    # Esc closes the dialog and gives focus back to the button that opened it.
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    expect(dialog.get_by_label("Name")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("button", name="Create key")).to_be_focused()

    page.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_label("Name")).to_be_focused()
    screenshot(page, f"api-keys-create-{shot}", full_page=False)
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_text("Give the key a name")).to_be_visible()
    expect(dialog.get_by_label("Name")).to_be_focused()
    screenshot(page, f"api-keys-create-error-{shot}", full_page=False)

    dialog.get_by_label("Name").fill("CI pipeline")
    dialog.get_by_role("button", name="Create key").click()
    reveal = page.get_by_role("dialog", name="Copy your new key")
    expect(reveal).to_contain_text("The key is shown only once")
    full = reveal.locator("code").filter(has_text="fvk_live_").inner_text().strip()
    assert KEY.fullmatch(full)
    # The table behind the dialog has already redrawn: the new row, its prefix only.
    expect(page.locator("#api-keys")).to_contain_text("2 of 10 active keys")
    screenshot(page, f"api-keys-reveal-{shot}", full_page=False)

    reveal.get_by_role("button", name="Copy").click()
    expect(reveal.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == full
    assert_no_key_in_storage(page)

    reveal.get_by_role("button", name="Done").click()
    expect(reveal).to_have_count(0)
    row = page.get_by_role("row").filter(has_text="CI pipeline")
    expect(row.get_by_role("link", name="CI pipeline")).to_be_focused()  # the new row
    expect(row).to_contain_text(full[:13] + "…")
    expect(row).to_contain_text("Never")
    expect(row).to_contain_text("Active")
    assert full not in page.content()
    assert_no_key_in_storage(page)

    page.reload()
    expect(page.get_by_role("row").filter(has_text="CI pipeline")).to_contain_text(full[:13] + "…")
    assert full not in page.content()
    assert_no_key_in_storage(page)

    page.get_by_role("button", name="Revoke CI pipeline").click()
    confirm = page.get_by_role("alertdialog", name="Revoke “CI pipeline”?")
    expect(confirm).to_contain_text(CONFIRM_TEXT)
    expect(confirm.get_by_role("link", name="Cancel")).to_be_focused()
    screenshot(page, f"api-keys-revoke-{shot}", full_page=False)
    confirm.get_by_role("button", name="Revoke key").click()
    expect(confirm).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("“CI pipeline” was revoked")
    expect(row).to_be_focused()  # the row stays where it was, marked revoked; the notice is read out
    expect(row).to_contain_text("Revoked")
    expect(row).to_contain_text("by Adam Admin")
    expect(page.get_by_role("button", name="Revoke CI pipeline")).to_have_count(0)
    expect(page.get_by_text("1 of 10 active keys")).to_be_visible()
    screenshot(page, f"api-keys-after-revoke-{shot}")
    assert_no_key_in_storage(page)
    watch.assert_clean()


def test_at_the_cap_create_key_is_disabled_with_its_reason(app_context, page_factory, demo, backend):
    ava = demo.user("ava@acme.test")
    for n in range(keys.MAX_ACTIVE_KEYS):
        keys.create_key(demo.acme.id, ava.id, f"Service {n + 1}")
    page, watch = page_factory()
    login(page, "ava@acme.test")
    open_api_keys(page)
    expect(page.get_by_text("10 of 10 active keys")).to_be_visible()
    # aria-disabled, not disabled: reachable by keyboard, its reason read with it; clicking does nothing.
    create = page.get_by_role("button", name="Create key")
    expect(create).to_have_attribute("aria-disabled", "true")
    expect(create).to_have_accessible_description(re.compile(r"^Revoke a key to create another"))
    create.focus()
    expect(create).to_be_focused()
    page.keyboard.press("Enter")
    create.click(force=True)  # Playwright itself refuses to click an aria-disabled button
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text("Revoke a key to create another")).to_be_visible()
    screenshot(page, f"api-keys-at-cap-desktop-{backend}")

    # Opened directly, the create page shows the reason, not a name field next to a dead button.
    page.goto("/settings/api-keys/new")
    expect(page.get_by_role("alert")).to_contain_text("Revoke a key to create another")
    expect(page.get_by_label("Name")).to_have_count(0)
    expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    screenshot(page, f"api-keys-create-at-cap-desktop-{backend}")
    page.get_by_role("link", name="Back to API keys").click()

    # Revoking one frees a slot at once: the button comes back without a reload.
    page.get_by_role("button", name="Revoke Service 1", exact=True).click()
    page.get_by_role("alertdialog").get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("9 of 10 active keys")).to_be_visible()
    expect(page.get_by_role("button", name="Create key")).not_to_have_attribute("aria-disabled", "true")
    watch.assert_clean()


def test_at_the_cap_keys_unused_for_30_days_are_pointed_at(app_context, page_factory, demo):
    ava = demo.user("ava@acme.test")
    created = [keys.create_key(demo.acme.id, ava.id, f"Service {n + 1}").key
               for n in range(keys.MAX_ACTIVE_KEYS)]
    for n, key in enumerate(created):
        if n == 3:
            key.last_used_at = utcnow() - timedelta(days=45)
        elif n != 4:
            key.last_used_at = utcnow() - timedelta(days=2)
    db.session.commit()
    page, watch = page_factory()
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    reason = page.locator("#create-key-reason")
    expect(reason).to_contain_text("Not used for 30 days or more: Service 4.")
    expect(page.get_by_role("row").filter(has_text="Service 4")).to_have_class(re.compile(r"\bis-stale\b"))
    expect(page.get_by_role("row").filter(has_text="Service 5")).not_to_have_class(re.compile(r"\bis-stale\b"))
    watch.assert_clean()


@pytest.mark.parametrize("email", ["mia@acme.test", "fred@fox.test"])
def test_members_and_free_workspaces_see_no_api_keys(page_factory, demo, email):
    page, watch = page_factory()
    login(page, email)
    page.get_by_role("link", name="Settings").click()
    nav = page.get_by_role("navigation", name="Settings")
    expect(nav.get_by_role("link", name="Members")).to_be_visible()
    expect(nav.get_by_role("link", name="API Keys")).to_have_count(0)
    response = page.goto("/settings/api-keys")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    # Inside the app shell: the header and navigation are there, nothing about the section is.
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Initiatives")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("API key")
    screenshot(page, f"error-404-signed-in-{email.split('@')[0]}")
    watch.assert_clean()


def test_error_pages_outside_the_app_have_no_shell(page_factory, demo):
    page, watch = page_factory()
    response = page.goto("/no-such-page")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    watch.console_errors.clear()  # Chromium logs the 404 of the document itself
    watch.assert_clean()


def test_without_javascript_the_same_actions_are_plain_forms(page_factory, demo, backend):
    page, watch = page_factory(javascript=False)
    login(page, "adam@acme.test")
    page.goto("/settings/api-keys")
    page.get_by_role("button", name="Create key").click()
    expect(page).to_have_url(re.compile(r"/settings/api-keys/new"))
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("Give the key a name")).to_be_visible()
    page.get_by_label("Name").fill("CI pipeline")
    page.get_by_role("button", name="Create key").click()
    expect(page).to_have_url(re.compile(r"/settings/api-keys$"))  # a POST answer: no key in the URL
    full = page.locator("code").filter(has_text="fvk_live_").inner_text().strip()
    assert KEY.fullmatch(full)
    expect(page.get_by_role("button", name="Copy")).to_be_hidden()  # needs JavaScript
    screenshot(page, f"api-keys-reveal-nojs-desktop-{backend}")
    page.get_by_role("link", name="Done").click()
    expect(page.get_by_role("row").filter(has_text="CI pipeline")).to_contain_text(full[:13] + "…")
    assert full not in page.content()

    page.get_by_role("button", name="Revoke CI pipeline").click()
    expect(page.get_by_role("heading", name="Revoke “CI pipeline”?")).to_be_visible()
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_text("“CI pipeline” was revoked")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="CI pipeline")).to_contain_text("Revoked")
    expect(page.get_by_role("button", name="Revoke CI pipeline")).to_have_count(0)
    watch.assert_clean()


# -- the watch every browser test ends with --------------------------------------------------


def test_the_watch_still_sees_a_csp_violation_after_navigating_away(page_factory, demo):
    page, watch = page_factory()
    page.goto("/login")
    # An inline <style> breaks our CSP; wait until the page has seen the violation, then leave.
    page.evaluate("""() => new Promise(resolve => {
      document.addEventListener('securitypolicyviolation', resolve, {once: true});
      document.head.insertAdjacentHTML('beforeend', '<style>b { color: red }</style>');
    })""")
    page.goto("/login?next=elsewhere")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    [violation] = watch.csp_violations()
    assert violation.startswith("style-src") and violation.endswith("/login")  # where it happened
    assert "Content Security Policy" in watch.console_errors[0]  # Chromium's console says it too
    with pytest.raises(AssertionError):
        watch.assert_clean()
