"""The keys page with the data a workspace really has (seed-demo --lived-in: ten-odd keys, long
names, usage, CI origins, a leak with its alert, keys revoked by hand and by a removal, a key that
expires in three days and one that has expired), measured
in Chromium at 1280, 1440, 390 and 320 px: nothing scrolls sideways, every Revoke is inside its
card and the viewport, names are whole on phones and never broken inside a word at desktop, a
row is at most two short lines at desktop; a key revoked a moment ago stays in view; the name
rule, the leak alert's next steps and the chart work by keyboard; axe finds nothing serious."""

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from fvapp.cli import DEMO_PASSWORD, seed_demo_expiring_key
from fvapp.demo_lived_in import MARKER, seed_lived_in
from fvapp.extensions import db
from fvapp.models import utcnow
from fvapp.services import keys

from .axe import audit
from .conftest import login, screenshot

WIDTHS = {"1280": {"width": 1280, "height": 900}, "1440": {"width": 1440, "height": 900},
          "390": {"width": 390, "height": 844}, "320": {"width": 320, "height": 720}}

MEASURE = r"""() => {
  const card = document.querySelector('#api-keys').getBoundingClientRect();
  const wrap = document.querySelector('.table-wrap');
  const revokes = [...document.querySelectorAll('.keys-table button')].map(b => {
    const r = b.getBoundingClientRect();
    return {name: b.getAttribute('aria-label'), inside: r.left >= card.left && r.right <= card.right
            && r.left >= 0 && r.right <= innerWidth};
  });
  const names = [...document.querySelectorAll('.keys-table .key-name')].map(a => ({
    name: a.textContent, whole: a.scrollHeight <= a.clientHeight + 1 && a.scrollWidth <= a.clientWidth + 1,
    height: a.getBoundingClientRect().height,
    // every word of the name on a single line box: never broken inside a word (a line may
    // end after a space or a hyphen, as in "data-warehouse")
    words: [...a.textContent.matchAll(/[^\s-]+-?/g)].every(match => {
      const range = document.createRange();
      range.setStart(a.firstChild, match.index); range.setEnd(a.firstChild, match.index + match[0].length);
      const rects = [...range.getClientRects()].filter(r => r.width > 0);
      return new Set(rects.map(r => Math.round(r.top))).size <= 1;
    }),
  }));
  const line = parseFloat(getComputedStyle(document.querySelector('.keys-table td')).lineHeight);
  const rows = [...document.querySelectorAll('.key-row')].map(r => r.getBoundingClientRect().height);
  return {page: document.documentElement.scrollWidth - innerWidth,
          table: wrap.scrollWidth - wrap.clientWidth, revokes, names, line, rows};
}"""


@pytest.fixture
def lived_in(demo):
    with demo.app.app_context():
        seed_lived_in(DEMO_PASSWORD)
    return demo


@pytest.fixture
def lived_in_with_expiry(lived_in):
    """The lived-in page plus the plain demo's key that expires in three days and a key that
    expired yesterday (in the history group, without Revoke)."""
    with lived_in.app.app_context():
        seed_demo_expiring_key()
        gone = keys.create_key(lived_in.acme.id, lived_in.user("adam@acme.test").id,
                               "Contractor laptop (Q3 data audit)", expires_at=utcnow() + timedelta(days=1)).key
        gone.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
    return lived_in


def ids_of(page):
    return page.evaluate("[...document.querySelectorAll('.key-row')].map(r => r.id)")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_lived_in_page_fits_at_every_width(lived_in_with_expiry, page_factory, backend, width):
    page, watch = page_factory(viewport=WIDTHS[width])
    login(page, "ava@acme.test")
    phone = int(width) < 760
    for path in ("/settings/api-keys", "/settings/api-keys?revoked=shown"):
        page.goto(path)
        expect(page.get_by_role("link", name=MARKER)).to_be_visible()
        expect(page.get_by_text("Expires in 3 days")).to_be_visible()
        m = page.evaluate(MEASURE)
        assert m["page"] <= 0 and m["table"] <= 0, (path, m["page"], m["table"])
        assert len(m["revokes"]) == 8 and all(r["inside"] for r in m["revokes"]), m["revokes"]
        assert all(n["words"] for n in m["names"]), [n["name"] for n in m["names"] if not n["words"]]
        if phone:
            assert all(n["whole"] for n in m["names"]), [n["name"] for n in m["names"] if not n["whole"]]
            assert all(n["height"] >= 44 for n in m["names"]), m["names"]  # touch targets
        else:  # two short lines at most: text and the cell's padding
            assert max(m["rows"]) <= 2 * m["line"] + 32, (m["rows"], m["line"])
        screenshot(page, f"api-keys-lived-in{'-shown' if 'shown' in path else ''}-{width}-{backend}")
    # The header keeps the workspace's name whole; the settings sections are one row on a phone,
    # the current one in view.
    assert page.evaluate("[...document.querySelectorAll('.switcher-name')]"
                         ".every(n => n.scrollWidth <= n.clientWidth)")
    nav = page.evaluate("""() => {
      const nav = document.querySelector('.settings-nav'), box = nav.getBoundingClientRect();
      const links = [...nav.querySelectorAll('a')].map(a => a.getBoundingClientRect());
      const current = nav.querySelector('[aria-current=page]').getBoundingClientRect();
      const body = document.querySelector('.settings-body').getBoundingClientRect();
      return {tops: new Set(links.map(r => Math.round(r.top))).size,
              inView: current.left >= box.left - 1 && current.right <= box.right + 1,
              navBottom: box.bottom, bodyTop: body.top};
    }""")
    # On a phone the row of sections stands above the page's card, never over it.
    assert nav["inView"] and (nav["tops"] == 1 if phone else True), nav
    assert not phone or nav["navBottom"] <= nav["bodyTop"] + 1, nav
    watch.assert_clean()


@pytest.mark.parametrize("shown", [False, True])
def test_a_key_revoked_a_moment_ago_stays_in_view(lived_in, page_factory, backend, shown):
    page, watch = page_factory(viewport=WIDTHS["390"])
    login(page, "adam@acme.test")
    page.goto("/settings/api-keys" + ("?revoked=shown" if shown else ""))
    before = ids_of(page)
    row = page.get_by_role("row").filter(has_text="Zapier integration")
    row_id = row.get_attribute("id")
    row.get_by_role("button", name="Revoke Zapier integration").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Revoke key").click()
    revoked = page.locator(f"#{row_id}")
    expect(revoked).to_contain_text("Revoked")
    expect(revoked).to_contain_text("by Adam Admin")
    expect(revoked).to_be_focused()
    expect(revoked).to_be_in_viewport()
    assert ids_of(page) == before  # nothing folded, nothing moved: the row stayed where it was
    if shown:
        expect(page.get_by_role("link", name=re.compile("Show all revoked keys"))).to_have_count(0)
    else:
        expect(page.get_by_role("link", name="Show all revoked keys (6)")).to_be_visible()
    # A refresh (another change) keeps revoked keys shown or folded as they were, this one in view.
    page.evaluate("htmx.trigger(document.body, 'keysChanged')")
    expect(page.locator(".keys-revoked").locator(f"#{row_id}")).to_be_visible()
    assert len(page.locator(".keys-revoked .key-row").all()) == (6 if shown else 3)
    screenshot(page, f"api-keys-revoked-moment-ago-{'shown' if shown else 'folded'}-{backend}")
    watch.assert_clean()


def test_names_count_and_a_duplicate_is_refused_in_the_dialog(lived_in, page_factory):
    page, watch = page_factory()
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    page.get_by_role("button", name="Create key").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    name = dialog.get_by_label("Name")
    expect(name).to_have_attribute("placeholder", "e.g. CI pipeline")
    expect(dialog.locator(".field-count")).to_have_text("0/100")
    name.fill("  ci PIPELINE ")
    expect(dialog.locator(".field-count")).to_have_text("14/100")
    dialog.get_by_role("button", name="Create key").click()
    expect(name).to_have_accessible_description(re.compile("Another active key is already named “CI pipeline”"))
    expect(name).to_be_focused()
    expect(page.get_by_role("link", name=re.compile("^ci pipeline$", re.I))).to_have_count(1)
    watch.assert_clean()


def test_the_leak_alert_leads_to_a_replacement_and_done_focuses_its_row(lived_in, page_factory, backend):
    page, watch = page_factory()
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    alert = page.get_by_role("alert").filter(has_text="was found public")
    expect(alert).to_contain_text("revoked by GitHub secret scanning")
    found: list[str] = []
    audit(page, "keys page with the leak alert", found)
    alert.get_by_role("button", name="Create replacement for Marketing site preview builds").click()
    dialog = page.get_by_role("dialog", name="Create API key")
    expect(dialog.get_by_label("Name")).to_have_value("Marketing site preview builds")
    audit(page, "create dialog from the alert", found)
    dialog.get_by_role("button", name="Create key").click()
    reveal = page.get_by_role("dialog", name="Copy your new key")
    reveal.get_by_role("button", name="Copy").click()
    reveal.get_by_role("button", name="Done").click()
    new_row = page.locator(".keys-active .key-row").filter(has_text="Marketing site preview builds")
    expect(new_row.get_by_role("link")).to_be_focused()
    # View key: the detail with its chart, by keyboard
    page.get_by_role("alert").get_by_role("link", name="View key Marketing site preview builds").click()
    detail = page.get_by_role("dialog", name="Marketing site preview builds")
    expect(detail).to_contain_text("by GitHub secret scanning")
    expect(detail).to_contain_text("leaked: found public at https://github.com/")
    audit(page, "detail of the leaked key", found)
    assert found == []
    watch.assert_clean()


def test_the_chart_reads_each_day_by_keyboard(lived_in, page_factory, backend):
    page, watch = page_factory()
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    page.get_by_role("link", name="CI pipeline").click()
    detail = page.get_by_role("dialog", name="CI pipeline")
    expect(detail.locator(".usage-y-top")).to_have_text(re.compile(r"^[\d,]+$"))
    today = detail.locator(".usage-day[tabindex='0']")
    today.focus()
    readout = detail.locator("[data-usage-readout]")
    expect(readout).to_have_text(today.get_attribute("aria-label"))
    page.keyboard.press("ArrowLeft")
    yesterday = detail.locator(".usage-day").nth(88)
    expect(yesterday).to_be_focused()
    expect(readout).to_have_text(yesterday.get_attribute("aria-label"))
    assert re.match(r"\d{4}-\d\d-\d\d: [\d,]+ requests?", yesterday.get_attribute("aria-label"))
    expect(detail).to_contain_text("Client errors")
    found: list[str] = []
    audit(page, "detail with the chart", found)
    assert found == []
    screenshot(page, f"key-detail-chart-{backend}", full_page=False)
    watch.assert_clean()


def test_the_sign_in_notice_is_inside_the_card(page_factory, demo):
    page, watch = page_factory(viewport=WIDTHS["390"])
    page.goto("/settings/api-keys")
    notice = page.locator(".auth-card").get_by_text("Sign in to continue.")
    expect(notice).to_be_visible()
    watch.assert_clean()
