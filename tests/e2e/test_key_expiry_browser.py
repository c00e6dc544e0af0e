"""Keys that expire in Chromium (SPEC §4): every "Expires" choice with JavaScript (htmx dialog)
and without (plain form pages), the date shown only for "Custom date", the 422 in the dialog,
the amber warning, an Expired row without Revoke, axe on the dialog. Screenshots at desktop and
phone width (artifacts/screenshots, and EXPIRY_SHOTS if set)."""

from __future__ import annotations

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from fvapp.extensions import db
from fvapp.models import ApiKey, utcnow
from fvapp.services import keys

from .axe import audit
from .conftest import DESKTOP, PHONE, login, screenshot

CHOICES = [("Never", None), ("7 days", 7), ("30 days", 30), ("60 days", 60), ("90 days", 90),
           ("Custom date", "custom")]
AMBER = "rgb(138, 90, 0)"  # --warning


def shot(page, name: str, full_page: bool = True) -> None:
    path = screenshot(page, name, full_page=full_page)
    target = os.environ.get("EXPIRY_SHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def in_days(days: int) -> str:
    return (utcnow().date() + timedelta(days=days)).isoformat()


def seed_expiring(demo) -> tuple[ApiKey, ApiKey]:
    """A key that expires in three days and one that expired yesterday, beside a plain one."""
    ava = demo.user("ava@acme.test")
    keys.create_key(demo.acme.id, ava.id, "Nightly export")
    soon = keys.create_key(demo.acme.id, ava.id, "Staging smoke tests",
                           expires_at=utcnow() + timedelta(days=3)).key
    gone = keys.create_key(demo.acme.id, ava.id, "Contractor laptop",
                           expires_at=utcnow() + timedelta(days=1)).key
    gone.expires_at = utcnow() - timedelta(days=1)
    db.session.commit()
    return soon, gone


def expiry_of(name: str):
    db.session.rollback()  # a fresh read: the live server wrote since
    return db.session.scalar(db.select(ApiKey.expires_at).where(ApiKey.name == name))


def key_count() -> int:
    db.session.rollback()
    return db.session.scalar(db.select(db.func.count()).select_from(ApiKey))


def test_each_choice_with_javascript(app_context, page_factory, demo, backend):
    page, watch = page_factory()
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    for label, days in CHOICES:
        page.get_by_role("button", name="Create key").click()
        dialog = page.get_by_role("dialog", name="Create API key")
        expect(dialog.get_by_label("Expires")).to_have_value("never")  # the default
        expect(dialog.get_by_label("Expiry date (UTC)")).to_be_hidden()
        dialog.get_by_label("Name").fill(f"Key {label}")
        dialog.get_by_label("Expires").select_option(label=label)
        if days == "custom":
            expect(dialog.get_by_label("Expiry date (UTC)")).to_be_visible()
            dialog.get_by_label("Expiry date (UTC)").fill(in_days(45))
        else:
            expect(dialog.get_by_label("Expiry date (UTC)")).to_be_hidden()
        dialog.get_by_role("button", name="Create key").click()
        reveal = page.get_by_role("dialog", name="Copy your new key")
        expect(reveal).to_contain_text("It does not expire" if days is None else "It expires on")
        expires_at = expiry_of(f"Key {label}")
        if days is None:
            assert expires_at is None
        elif days == "custom":
            assert expires_at.date().isoformat() == in_days(45)
            expect(reveal).to_contain_text(f"{in_days(45)} 23:59:59 UTC")
        else:
            assert expires_at.date().isoformat() == in_days(days)
        reveal.get_by_role("button", name="Copy").click()
        reveal.get_by_role("button", name="Done").click()
        expect(reveal).to_have_count(0)
        row = page.get_by_role("row").filter(has_text=f"Key {label}")
        if days == 7:
            expect(row).to_contain_text("Expires in 7 days")
        elif days is not None:
            expect(row).to_contain_text("Expires 20")
    expect(page.get_by_text("6 of 10 active keys")).to_be_visible()
    watch.assert_clean()


def test_each_choice_without_javascript(app_context, page_factory, demo, backend):
    page, watch = page_factory(javascript=False)
    login(page, "ava@acme.test")
    for label, days in CHOICES:
        page.goto("/settings/api-keys/new")
        page.get_by_label("Name").fill(f"Key {label}")
        page.get_by_label("Expires").select_option(label=label)
        if days == "custom":  # the stylesheet shows the date once "Custom date" is chosen
            expect(page.get_by_label("Expiry date (UTC)")).to_be_visible()
            page.get_by_label("Expiry date (UTC)").fill(in_days(200))
        page.get_by_role("button", name="Create key").click()
        expect(page.get_by_text("The key is shown only once")).to_be_visible()
        expect(page.get_by_text("It does not expire" if days is None else "It expires on")).to_be_visible()
        expires_at = expiry_of(f"Key {label}")
        wanted = None if days is None else in_days(200 if days == "custom" else days)
        assert (expires_at and expires_at.date().isoformat()) == wanted
    page.goto("/settings/api-keys")
    expect(page.get_by_text("6 of 10 active keys")).to_be_visible()
    watch.assert_clean()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_a_date_in_the_past_is_a_422_in_the_dialog(app_context, page_factory, demo, backend, javascript):
    page, watch = page_factory(javascript=javascript)
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    page.get_by_role("button", name="Create key").click()
    scope = page.get_by_role("dialog", name="Create API key") if javascript else page
    scope.get_by_label("Name").fill("Too late")
    scope.get_by_label("Expires").select_option(label="Custom date")
    scope.get_by_label("Expiry date (UTC)").fill(in_days(-1))
    scope.get_by_role("button", name="Create key").click()
    expect(scope.get_by_text("That date is in the past")).to_be_visible()
    expect(scope.get_by_label("Expiry date (UTC)")).to_be_focused()
    expect(scope.get_by_label("Expiry date (UTC)")).to_have_attribute("aria-invalid", "true")
    assert key_count() == 0
    scope.get_by_label("Expiry date (UTC)").fill(in_days(400))
    scope.get_by_role("button", name="Create key").click()
    expect(scope.get_by_text("A key can expire at most a year ahead")).to_be_visible()
    assert key_count() == 0
    watch.assert_clean()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_warning_the_expired_row_and_the_dialog(app_context, page_factory, demo, backend, width):
    soon, gone = seed_expiring(demo)
    page, watch = page_factory(viewport=DESKTOP if width == "desktop" else PHONE)
    name = f"{width}-{backend}"
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    expect(page.get_by_text("2 of 10 active keys")).to_be_visible()  # the expired one is out

    warning = page.locator(f"#key-{soon.id}").get_by_text("Expires in 3 days")
    expect(warning).to_be_visible()
    expect(warning).to_have_css("color", AMBER)
    expect(page.get_by_role("button", name="Revoke Staging smoke tests")).to_be_visible()

    expired = page.locator(f"#key-{gone.id}")
    expect(expired).to_contain_text("Expired")
    expect(expired).to_contain_text(f"on {(utcnow() - timedelta(days=1)).date().isoformat()}")
    expect(page.get_by_role("button", name="Revoke Contractor laptop")).to_have_count(0)
    rows = page.locator("tbody tr")
    assert rows.nth(rows.count() - 1).get_attribute("id") == f"key-{gone.id}"  # with the history
    warning.scroll_into_view_if_needed()
    shot(page, f"expiry-page-{name}")
    expired.scroll_into_view_if_needed()
    shot(page, f"expiry-rows-{name}", full_page=False)

    found: list[str] = []
    audit(page, "keys with an expiring and an expired key", found)
    page.get_by_role("link", name="Contractor laptop").click()
    detail = page.get_by_role("dialog", name="Contractor laptop")
    expect(detail).to_contain_text("Expired on")
    expect(detail.get_by_role("link", name="Revoke…")).to_have_count(0)
    audit(page, "detail of an expired key", found)
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    expect(dialog.get_by_label("Name")).to_be_focused()
    audit(page, "create dialog with Expires", found)
    dialog.get_by_label("Name").fill("Release bot")
    dialog.get_by_label("Expires").select_option(label="Custom date")
    dialog.get_by_label("Expiry date (UTC)").fill(in_days(30))
    audit(page, "create dialog with a custom date", found)
    shot(page, f"expiry-dialog-{name}", full_page=False)
    dialog.get_by_label("Expiry date (UTC)").fill(in_days(-3))
    dialog.get_by_role("button", name="Create key").click()
    expect(dialog.get_by_text("That date is in the past")).to_be_visible()
    audit(page, "create dialog with an expiry error", found)
    shot(page, f"expiry-dialog-error-{name}", full_page=False)
    dialog.get_by_label("Expiry date (UTC)").fill(in_days(30))
    dialog.get_by_role("button", name="Create key").click()
    reveal = page.get_by_role("dialog", name="Copy your new key")
    expect(reveal).to_contain_text(f"It expires on {in_days(30)} 23:59:59 UTC")
    audit(page, "reveal with its expiry", found)
    shot(page, f"expiry-reveal-{name}", full_page=False)
    assert found == []
    watch.assert_clean()
    assert re.fullmatch(r"[0-9a-f-]{36}", str(soon.id))
