"""The keys table at desktop, phone and 320 px: names wrap only between words, very long names
are clamped at desktop with the full name in a title, older revoked keys fold behind a "Show all
revoked keys (N)" link once there are more than a few (a plain link: no JS needed), and touch
targets on phone are at least 44 px high."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import update

from fvapp.extensions import db
from fvapp.models import AuditEvent, utcnow
from fvapp.services import keys

from .conftest import DESKTOP, PHONE, login, screenshot

LONG = "Nightly warehouse export for the finance team's quarterly reconciliation run in Frankfurt"
NARROW = {"width": 320, "height": 720}


def seed(demo, revoked=5):
    ava = demo.user("ava@acme.test")
    keys.create_key(demo.acme.id, ava.id, "Zapier integration")
    keys.create_key(demo.acme.id, ava.id, LONG)
    for n in range(revoked):
        old = keys.create_key(demo.acme.id, ava.id, f"Old script {n + 1}").key
        keys.revoke_key(demo.acme.id, old.id, ava.id)


def word_is_on_one_line(page, text):
    """True when the rendered word `text` inside the Name cell sits on a single line box."""
    return page.evaluate("""(word) => {
      const el = [...document.querySelectorAll('.key-name')].find(e => e.textContent.includes(word));
      const node = el.firstChild, start = node.textContent.indexOf(word);
      const range = document.createRange();
      range.setStart(node, start); range.setEnd(node, start + word.length);
      // one line box (a line-clamped name may report a line's box twice, at the same height)
      return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size === 1;
    }""", text)


@pytest.mark.parametrize("size", ["desktop", "phone", "narrow"])
def test_names_wrap_between_words_and_revoked_keys_fold(app_context, page_factory, demo, backend, size):
    seed(demo)
    viewport = {"desktop": DESKTOP, "phone": PHONE, "narrow": NARROW}[size]
    page, watch = page_factory(viewport=viewport)
    login(page, "adam@acme.test")
    page.goto("/settings/api-keys")
    table = page.locator(".keys-table")
    expect(table).to_contain_text("Zapier integration")
    assert word_is_on_one_line(page, "integration")
    assert word_is_on_one_line(page, "reconciliation")
    long_name = table.locator(".key-name", has_text="Nightly warehouse")
    expect(long_name).to_have_attribute("title", LONG)
    # Clamped to at most two lines at desktop; whole on phones.
    line = float(page.evaluate("parseFloat(getComputedStyle(document.querySelector('.key-name')).lineHeight)"))
    if size == "desktop":
        assert long_name.bounding_box()["height"] <= 2 * line + 1

    # Five revoked keys: the latest three shown, the older two behind a link with the count.
    expect(table).to_contain_text("Old script 5")
    expect(table).not_to_contain_text("Old script 2")
    screenshot(page, f"api-keys-layout-{size}-{backend}")
    page.get_by_role("link", name="Show all revoked keys (5)").click()
    expect(table).to_contain_text("Old script 1")
    expect(page.get_by_role("link", name="Show only the latest revoked keys")).to_be_visible()
    screenshot(page, f"api-keys-layout-revoked-{size}-{backend}")

    if size != "desktop":
        for name in ["Revoke Zapier integration", "Log out", "Create key"]:
            box = page.get_by_role("button", name=name).bounding_box()
            assert box["height"] >= 44, (name, box)
        for nav in ["Main", "Settings"]:
            for link in page.get_by_role("navigation", name=nav).get_by_role("link").all():
                assert link.bounding_box()["height"] >= 44, (nav, link.inner_text())
        # Compact rows: an active key's row stays well under 200 px.
        row = page.get_by_role("row").filter(has_text="Zapier integration")
        assert row.bounding_box()["height"] < 200

    # Dates wrap cleanly: "2 minutes ago" never breaks mid-phrase, here or in Activity.
    db.session.execute(update(AuditEvent).values(created_at=utcnow() - timedelta(minutes=2)))
    db.session.commit()
    page.goto("/settings/activity")
    expect(page.get_by_role("cell", name="2 minutes ago").first).to_be_visible()
    assert times_on_one_line(page)
    page.goto("/settings/api-keys?revoked=shown")
    assert times_on_one_line(page)
    watch.assert_clean()


def times_on_one_line(page):
    return page.evaluate("""() => [...document.querySelectorAll('main time')]
      .every(t => t.getClientRects().length === 1 && t.getBoundingClientRect().height < 30)""")


def test_a_few_revoked_keys_stay_listed_without_a_toggle(app_context, page_factory, demo):
    seed(demo, revoked=3)
    page, watch = page_factory(javascript=False)
    login(page, "adam@acme.test")
    page.goto("/settings/api-keys")
    expect(page.locator(".keys-table")).to_contain_text("Old script 1")
    expect(page.get_by_role("link", name=re.compile("revoked keys"))).to_have_count(0)
    watch.assert_clean()
