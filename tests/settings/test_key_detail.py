"""Key detail view (SPEC §9): opened from the row's name; same gates as the API Keys section."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from fvapp.extensions import db
from fvapp.formatting import duration, interval
from fvapp.leaks import reports as leaks
from fvapp.models import KeyUsageDaily
from fvapp.services import keys
from fvapp.usage import reading as key_usage
from fvapp.usage import today

URL = "https://example.com/paste/1"


def test_detail_page_without_js_and_dialog_with_htmx(app, demo, browser):
    with app.app_context():
        created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Nightly export")
        detail_url = f"/settings/api-keys/{created.key.id}"  # loads the row while its session lasts
    browser.login("adam@acme.test")
    section = browser.get("/settings/api-keys").text
    assert f'href="{detail_url}"' in section and f'hx-get="{detail_url}"' in section
    page = browser.get(detail_url)
    assert page.status_code == 200
    assert "<html" in page.text.lower()  # a whole page without JavaScript
    for text in ("Nightly export", created.key.prefix, "Active", "Ava Owner", "Never"):
        assert text in page.text
    assert created.clear not in page.text
    dialog = browser.get(detail_url, htmx=True)
    assert dialog.status_code == 200
    assert '<dialog class="modal" id="key-detail"' in dialog.text and "<html" not in dialog.text.lower()


def test_detail_shows_revocation_by_whom_when_and_why(app, demo, browser):
    with app.app_context():
        ava = demo.user("ava@acme.test")
        manual = keys.create_key(demo.acme.id, ava.id, "Old script").key.id
        keys.revoke_key(demo.acme.id, manual, demo.user("adam@acme.test").id)
        leaked = keys.create_key(demo.acme.id, ava.id, "Leaky")
        leaks.handle_report([leaks.Reported(token=leaked.clear, type="t", url=URL)])
        leaked_id = leaked.key.id
    browser.login("ava@acme.test")
    page = browser.get(f"/settings/api-keys/{manual}").text
    assert "Revoked" in page and "by Adam Admin" in page
    page = browser.get(f"/settings/api-keys/{leaked_id}").text
    assert "Revoked" in page and f"leaked: found public at {URL}" in page and "Revoke…" not in page
    revoked = page.split("<main", 1)[1].split("Revoked", 1)[1][:400]
    assert "by GitHub secret scanning" in page and "ForceVue" not in revoked


def test_detail_gates(app, demo, browser, browser_factory):
    with app.app_context():
        created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Gate test")
        path = f"/settings/api-keys/{created.key.id}"
    member = browser_factory()
    member.login("mia@acme.test")
    assert member.get(path).status_code == 404
    assert member.get(path, htmx=True).status_code == 404
    fred = browser_factory()
    fred.login("fred@fox.test")
    assert fred.get(path).status_code == 404
    # Adam is admin of Acme (pro) and of Fox (free): from Fox, Acme's key is not found
    browser.login("adam@acme.test")
    assert browser.get(path).status_code == 200
    browser.switch(demo.fox.id)
    assert browser.get(path).status_code == 404
    assert browser.get("/settings/api-keys/not-a-uuid").status_code == 404


def test_other_paid_workspaces_key_is_404(app, demo, browser):
    from fvapp.extensions import db
    from fvapp.models import Membership, Workspace

    with app.app_context():
        other = Workspace(name="Beta Co", plan="pro")
        db.session.add(other)
        db.session.flush()
        other_id = other.id
        db.session.add(Membership(user_id=demo.user("adam@acme.test").id, workspace_id=other_id, role="owner"))
        db.session.commit()
        acme_key = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Acme only").key.id
    browser.login("adam@acme.test")
    browser.switch(other_id)
    assert "Beta Co" in browser.get("/settings/api-keys").text  # the section is open to him here
    assert browser.get(f"/settings/api-keys/{acme_key}").status_code == 404


def _usage(app, key_id, **days):
    with app.app_context():
        for age, (ok, denied, limited, errors) in days.items():
            db.session.add(KeyUsageDaily(key_id=key_id, day=today() - timedelta(days=int(age[1:])),
                                         ok=ok, denied=denied, limited=limited, errors=errors))
        db.session.commit()


def test_the_chart_has_a_y_axis_focusable_days_and_every_day_in_its_table(app_factory, demo, browser):
    app = app_factory(USAGE_FLUSH_INTERVAL=30)
    with app.app_context():
        key_id = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Nightly export").key.id
    _usage(app, key_id, d0=(30, 2, 1, 3), d5=(12, 0, 0, 0))
    client = browser.__class__(app.test_client())
    client.login("ava@acme.test")
    page = client.get(f"/settings/api-keys/{key_id}", htmx=True).text
    # y axis: 0, the middle and a round top above the busiest day (36), as labelled gridlines
    assert re.search(r'<span class="usage-y-top">40</span><span class="usage-y-mid">20</span>'
                     r'<span class="usage-y-0">0</span>', page)
    assert page.count('class="usage-grid"') == 2
    # each day: focusable (one tab stop, today), named by its counts, with a <title> for hover
    days = re.findall(r'<g class="usage-day" role="img" aria-label="([^"]+)" tabindex="(-?\d)">'
                      r'<title>([^<]+)</title>', page)
    assert len(days) == 90 and [t for _, t, _ in days].count("0") == 1 and days[-1][1] == "0"
    assert days[-1][0] == days[-1][2] == (
        f"{today().isoformat()}: 36 requests (30 OK, 2 denied, 1 limited, 3 client errors)")
    assert days[0][0].endswith(": 0 requests")
    table = page[page.index('<table class="sr-only">'):page.index("</table>")]
    assert table.count('<th scope="row">') == 90 and '<th scope="col">Client errors</th>' in table
    # other 4xx are client errors, not "refused"; the lag is the configured interval
    assert "Refused, 90 days</dt><dd>3" in page and "Client errors, 90 days</dt><dd>3" in page
    assert re.search(r"every 30 seconds,\s+so the last 30 seconds", page) and "once a minute" not in page
    assert "peak" not in page


@pytest.mark.parametrize("seconds, words", [(60, "1 minute"), (30, "30 seconds"), (300, "5 minutes"),
                                            (90, "1.5 minutes"), (1, "1 second"), (7200, "2 hours")])
def test_intervals_in_words(seconds, words):
    assert duration(seconds) == words
    assert interval(seconds) == words.removeprefix("1 ")  # "every minute", "the last 30 seconds"


@pytest.mark.parametrize("peak, axis", [(0, [0, 1, 2]), (3, [0, 2, 4]), (36, [0, 20, 40]),
                                        (99, [0, 50, 100]), (250, [0, 125, 250]), (20278, [0, 12500, 25000])])
def test_the_axis_is_round_and_never_below_the_busiest_day(peak, axis):
    assert key_usage.axis(peak) == axis
