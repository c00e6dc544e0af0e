"""Keys that expire (SPEC §4): chosen in the create dialog (with and without htmx), refused
from their expiry on by REST and MCP with the date, out of the cap of 10, shown on the page,
in the detail view and in Activity, left alone by leak reports, and in the demo."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import requests
import sqlalchemy as sa

from fvapp.extensions import db
from fvapp.models import MAX_ACTIVE_KEYS, ApiKey, AuditEvent, KeyLeakAlert, utcnow
from fvapp.services import keys, members, workspaces
from fvapp.services.errors import DomainError
from tests.support.api import TIMESTAMP, Api, assert_envelope, bearer
from tests.support.leaks import post as post_report
from tests.support.leaks import report as leak_report
from tests.support.leaks import trusted_signer
from tests.support.mcp import live, post_initialize
from tests.support.tracing import engine_of, sql_statements

PAGE = "/settings/api-keys"
NEW = "/settings/api-keys/new"
KEY = re.compile(r"fvk_live_[0-9A-Za-z]{38}")


def today() -> date:
    return utcnow().date()


def make_key(app, demo, name="CI pipeline", expires_at=None, email="ava@acme.test"):
    """A key made by the service the page uses: (its id, the clear key)."""
    with app.app_context():
        created = keys.create_key(demo.acme.id, demo.user(email).id, name, expires_at=expires_at)
        return created.key.id, created.clear


def set_expiry(app, key_id, when: datetime) -> None:
    """Move a key's expiry in the test database (the clock is not moved; nothing sleeps)."""
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(ApiKey.__table__).where(ApiKey.__table__.c.id == key_id)
                     .values(expires_at=when))


def row(app, key_id) -> ApiKey:
    with app.app_context():
        key = db.session.get(ApiKey, key_id)
        db.session.expunge(key)
        return key


def key_rows(app):
    with app.app_context():
        return db.session.execute(sa.select(ApiKey.__table__).order_by(ApiKey.id)).all()


@pytest.fixture
def ava(browser, demo):
    browser.login("ava@acme.test")
    return browser


def create(browser, htmx, expires, expires_on="", name="CI pipeline"):
    form = browser.get(NEW, htmx=htmx)
    once = re.search(r'name="form_once"[^>]*value="([^"]+)"', form.text).group(1)
    return browser.post("/settings/api-keys", {"name": name, "form_once": once,
                                               "expires": expires, "expires_on": expires_on},
                        htmx=htmx)


# -- the choice, as the service reads it ------------------------------------------------------


def test_choose_expiry_reads_each_choice():
    now = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)
    assert keys.choose_expiry("never", "", now) is None
    assert keys.choose_expiry(None, None, now) is None
    for days in (7, 30, 60, 90):
        assert keys.choose_expiry(str(days), "2027-01-01", now) == now + timedelta(days=days)
    end_of_jan = datetime.combine(date(2027, 1, 31), time.max, UTC)
    assert keys.choose_expiry("custom", "2027-01-31", now) == end_of_jan
    assert keys.choose_expiry("custom", " 2026-12-07 ", now).date() == date(2026, 12, 7)  # today
    assert keys.choose_expiry("custom", "2027-12-07", now).date() == date(2027, 12, 7)  # a year


@pytest.mark.parametrize(("choice", "on", "field", "says"), [
    ("custom", "2026-12-06", "expires_on", "in the past"),
    ("custom", "2027-12-08", "expires_on", "at most a year ahead, on 2027-12-07"),
    ("custom", "2027-02-30", "expires_on", "YYYY-MM-DD"),
    ("custom", "31/01/2027", "expires_on", "YYYY-MM-DD"),
    ("custom", "2027-W05-1", "expires_on", "YYYY-MM-DD"),
    ("custom", "20270131", "expires_on", "YYYY-MM-DD"),
    ("custom", "", "expires_on", "Choose the date"),
    ("5", "", "expires", "from the list"),
    ("365", "", "expires", "from the list"),
    ("custom\x00", "2027-01-01", "expires", "from the list"),
])
def test_choose_expiry_refuses_past_far_and_malformed_dates(choice, on, field, says):
    now = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)
    with pytest.raises(DomainError) as refused:
        keys.choose_expiry(choice, on, now)
    assert refused.value.field == field and says in refused.value.message


def test_create_key_refuses_an_expiry_in_the_past_or_beyond_a_year(app_context, demo):
    ava_id = demo.user("ava@acme.test").id
    for when in (utcnow() - timedelta(seconds=1), utcnow() + timedelta(days=367)):
        with pytest.raises(DomainError):
            keys.create_key(demo.acme.id, ava_id, "CI pipeline", expires_at=when)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey)) == 0


# -- the create dialog, with htmx and as plain forms --------------------------------------------


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain-form"])
def test_the_dialog_offers_never_by_default_the_days_and_a_date(ava, htmx):
    text = ava.get(NEW, htmx=htmx).text
    select = re.search(r'<select[^>]*id="expires"[^>]*name="expires"[^>]*>(.*?)</select>', text, re.S)
    assert select, text
    options = re.findall(r'<option([^>]*)value="([^"]+)"[^>]*>([^<]+)</option>', select.group(0))
    assert [(v, label) for _, v, label in options] == [
        ("never", "Never"), ("7", "7 days"), ("30", "30 days"), ("60", "60 days"),
        ("90", "90 days"), ("custom", "Custom date")]
    assert "selected" in options[0][0]
    assert re.search(r'<label[^>]*for="expires"[^>]*>Expires</label>', text)
    date_input = re.search(r'<input[^>]*id="expires_on"[^>]*>', text).group(0)
    assert 'type="date"' in date_input and 'name="expires_on"' in date_input
    assert f'min="{today().isoformat()}"' in date_input
    assert f'max="{(today() + timedelta(days=365)).isoformat()}"' in date_input
    assert re.search(r'<label[^>]*for="expires_on"[^>]*>Expiry date \(UTC\)</label>', text)


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain-form"])
@pytest.mark.parametrize("choice", ["never", "7", "30", "60", "90", "custom"])
def test_each_choice_creates_a_key_that_expires_then(ava, demo, htmx, choice):
    on = (today() + timedelta(days=45)).isoformat()
    before = utcnow()
    response = create(ava, htmx, choice, on if choice == "custom" else "2099-01-01")
    after = utcnow()
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    clear = KEY.findall(response.text)[0]
    key = demo.scalar(sa.select(ApiKey).where(ApiKey.key_hash == keys.hash_key(clear)))
    if choice == "never":
        assert key.expires_at is None
        assert "It does not expire" in response.text
        return
    if choice == "custom":
        assert key.expires_at == datetime.combine(date.fromisoformat(on), time.max, UTC)
    else:
        assert before + timedelta(days=int(choice)) <= key.expires_at
        assert key.expires_at <= after + timedelta(days=int(choice))
    # The reveal says when.
    stamp = key.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert re.search(rf"It expires on <strong><time[^>]*>{re.escape(stamp)}</time></strong>",
                     response.text), response.text


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain-form"])
@pytest.mark.parametrize(("choice", "on", "says"), [
    ("custom", "past", "That date is in the past"),
    ("custom", "beyond", "A key can expire at most a year ahead"),
    ("custom", "2027-13-45", "Give the date as YYYY-MM-DD"),
    ("custom", "soon", "Give the date as YYYY-MM-DD"),
    ("custom", "", "Choose the date the key expires on"),
    ("14", "", "Choose when the key expires from the list"),
])
def test_a_bad_expiry_is_422_in_the_dialog_and_creates_nothing(ava, demo, htmx, choice, on, says):
    on = {"past": (today() - timedelta(days=1)).isoformat(),
          "beyond": (today() + timedelta(days=366)).isoformat()}.get(on, on)
    before = key_rows(demo.app)
    response = create(ava, htmx, choice, on)
    assert response.status_code == 422
    assert says in response.text
    assert not KEY.search(response.text)
    assert key_rows(demo.app) == before == []
    field = "expires_on" if choice == "custom" else "expires"
    element = re.search(rf'<(?:input|select)[^>]*id="{field}"[^>]*>', response.text).group(0)
    assert 'aria-invalid="true"' in element and "autofocus" in element
    assert "autofocus" not in re.search(r'<input[^>]*id="name"[^>]*>', response.text).group(0)
    if htmx:
        assert "<html" not in response.text and 'id="key-create"' in response.text
    # What was typed stays: the choice is still selected (so the date field shows).
    assert re.search(rf'<option selected value="{choice}"|<option value="{choice}" selected', response.text) \
        or choice == "14"


# -- REST and MCP ---------------------------------------------------------------------------


def test_me_carries_expires_at_null_or_iso(app, demo):
    never_id, never = make_key(app, demo, "Never")
    soon_id, soon = make_key(app, demo, "Soon", expires_at=utcnow() + timedelta(days=3))
    client = app.test_client()
    data = assert_envelope(Api(client, never).get("/me"), 200)["data"]
    assert data["api_key"]["expires_at"] is None
    data = assert_envelope(Api(client, soon).get("/me"), 200)["data"]
    stamp = data["api_key"]["expires_at"]
    assert TIMESTAMP.match(stamp)
    assert stamp == row(app, soon_id).expires_at.isoformat(timespec="milliseconds")[:-6] + "Z"


def test_openapi_documents_expires_at(app):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    schema = document["components"]["schemas"]["ApiKeyOut"]
    assert "expires_at" in schema["required"]
    variants = schema["properties"]["expires_at"]["anyOf"]
    assert {"type": "null"} in variants
    assert any(v.get("format") == "date-time" for v in variants)
    assert "never expires" in schema["properties"]["expires_at"]["description"]


def _expired_401(response, day: date):
    body = assert_envelope(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body["error"] == f"This API key expired on {day.isoformat()}."


def test_rest_answers_401_with_the_date_from_expires_at_on(app, demo):
    key_id, clear = make_key(app, demo, expires_at=utcnow() + timedelta(days=7))
    api = Api(app.test_client(), clear)
    assert api.get("/me").status_code == 200
    set_expiry(app, key_id, utcnow() + timedelta(seconds=30))
    assert api.get("/initiatives").status_code == 200  # not yet
    moment = utcnow() - timedelta(milliseconds=1)
    set_expiry(app, key_id, moment)
    for response in (api.get("/me"), api.get("/initiatives"),
                     api.post("/initiatives", json={"title": "x"})):
        _expired_401(response, moment.date())
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(sa.text("initiatives"))) == 0


def test_a_revoked_key_past_its_expiry_reads_as_revoked(app, demo):
    key_id, clear = make_key(app, demo, expires_at=utcnow() + timedelta(days=7))
    with app.app_context():
        keys.revoke_key(demo.acme.id, key_id, demo.user("ava@acme.test").id)
    set_expiry(app, key_id, utcnow() - timedelta(days=1))
    body = assert_envelope(Api(app.test_client(), clear).get("/me"), 401, "UNAUTHORIZED")
    assert "expired" not in body["error"] and "revoked" in body["error"]


def test_the_expired_refusal_costs_the_one_auth_select(app, demo):
    key_id, clear = make_key(app, demo, expires_at=utcnow() + timedelta(days=7))
    set_expiry(app, key_id, utcnow() - timedelta(hours=1))
    with sql_statements(engine_of(app)) as seen:
        assert Api(app.test_client(), clear).get("/me").status_code == 401
    assert len(seen) == 1 and seen[0].startswith("SELECT") and "api_keys.expires_at" in seen[0]


def test_an_expired_key_is_a_failed_authentication(app_factory, app, demo):
    limited = app_factory(API_AUTH_FAILURE_LIMIT="2 per minute")
    key_id, clear = make_key(app, demo, expires_at=utcnow() + timedelta(days=7))
    set_expiry(app, key_id, utcnow() - timedelta(hours=1))
    client = limited.test_client()
    for _ in range(2):
        assert client.get("/api/v1/me", headers=bearer(clear)).status_code == 401
    assert_envelope(client.get("/api/v1/me", headers=bearer(clear)), 429, "RATE_LIMITED")


def test_mcp_answers_the_same_401_once_expired(app, demo):
    key_id, clear = make_key(app, demo, expires_at=utcnow() + timedelta(days=7))
    with live(app) as base:
        assert post_initialize(base, bearer(clear)).status_code == 200
        moment = utcnow() - timedelta(seconds=1)
        set_expiry(app, key_id, moment)
        refused = post_initialize(base, bearer(clear))
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        body = refused.json()
        assert body["code"] == "UNAUTHORIZED"
        assert body["error"] == f"This API key expired on {moment.date().isoformat()}."
        assert isinstance(requests.get(base + "/api/mcp", timeout=10).json(), dict)  # manifest: public


# -- the cap, the page, the detail view, Activity ----------------------------------------------


def test_an_expired_key_frees_its_place_under_the_cap(ava, demo):
    ids = [make_key(demo.app, demo, f"Key {n}", expires_at=utcnow() + timedelta(days=30))[0]
           for n in range(MAX_ACTIVE_KEYS)]
    full = ava.get(PAGE)
    assert f"{MAX_ACTIVE_KEYS} of {MAX_ACTIVE_KEYS} active keys" in full.text
    assert create(ava, False, "never", name="Eleventh").status_code == 422
    set_expiry(demo.app, ids[0], utcnow() - timedelta(minutes=1))
    page = ava.get(PAGE).text
    assert f"{MAX_ACTIVE_KEYS - 1} of {MAX_ACTIVE_KEYS} active keys" in page
    assert 'aria-disabled="true"' not in page
    assert create(ava, False, "never", name="Eleventh").status_code == 200
    with demo.app.app_context():
        assert keys.count_active(demo.acme.id) == MAX_ACTIVE_KEYS


def test_the_cap_still_holds_with_expired_keys_present(app_context, demo):
    ava_id = demo.user("ava@acme.test").id
    first = keys.create_key(demo.acme.id, ava_id, "Old", expires_at=utcnow() + timedelta(days=1)).key
    first.expires_at = utcnow() - timedelta(days=1)
    db.session.commit()
    for n in range(MAX_ACTIVE_KEYS):
        keys.create_key(demo.acme.id, ava_id, f"Key {n}")
    with pytest.raises(keys.KeyLimitReached):
        keys.create_key(demo.acme.id, ava_id, "Eleventh")


def _row_html(page: str, key_id) -> str:
    return re.search(rf'<tr id="key-{key_id}".*?</tr>', page, re.S).group(0)


def test_the_row_says_when_a_key_expires_amber_within_seven_days(ava, demo):
    now = utcnow()
    made = {
        "today": make_key(demo.app, demo, "Today")[0],
        "tomorrow": make_key(demo.app, demo, "Tomorrow")[0],
        "three": make_key(demo.app, demo, "Three", expires_at=now + timedelta(days=3))[0],
        "seven": make_key(demo.app, demo, "Seven", expires_at=keys.end_of_day(today() + timedelta(days=7)))[0],
        "month": make_key(demo.app, demo, "Month", expires_at=keys.end_of_day(today() + timedelta(days=30)))[0],
        "never": make_key(demo.app, demo, "Never")[0],
    }
    set_expiry(demo.app, made["today"], keys.end_of_day(today()))
    set_expiry(demo.app, made["tomorrow"], keys.end_of_day(today() + timedelta(days=1)))
    page = ava.get(PAGE).text
    soon = r'<span class="key-expiry is-soon"><time datetime="[^"]+" title="[^"]+ UTC">{}</time></span>'
    assert re.search(soon.format("Expires today"), _row_html(page, made["today"]))
    assert re.search(soon.format("Expires tomorrow"), _row_html(page, made["tomorrow"]))
    assert re.search(soon.format("Expires in 3 days"), _row_html(page, made["three"]))
    assert re.search(soon.format("Expires in 7 days"), _row_html(page, made["seven"]))
    month = _row_html(page, made["month"])
    in_a_month = (today() + timedelta(days=30)).isoformat()
    assert re.search(rf'<span class="key-expiry"><time[^>]*>Expires {in_a_month}</time>', month)
    assert "key-expiry" not in _row_html(page, made["never"])
    for key_id in made.values():  # all active, all revocable
        assert "badge-active" in _row_html(page, key_id) and ">Revoke</button>" in _row_html(page, key_id)


def test_an_expired_key_shows_expired_with_its_date_without_revoke_among_the_revoked(ava, demo):
    live_id = make_key(demo.app, demo, "Live")[0]
    gone_id = make_key(demo.app, demo, "Gone", expires_at=utcnow() + timedelta(days=7))[0]
    moment = utcnow() - timedelta(days=2)
    set_expiry(demo.app, gone_id, moment)
    page = ava.get(PAGE).text
    gone = _row_html(page, gone_id)
    assert "is-revoked is-expired" in gone  # styled as the history it sits with
    assert '<span class="badge badge-expired">Expired</span>' in gone
    assert re.search(rf'on <time datetime="[^"]+" title="[^"]+">{moment.date().isoformat()}</time>', gone)
    assert "Revoke" not in gone and "badge-revoked" not in gone
    assert page.index(f'id="key-{live_id}"') < page.index(f'id="key-{gone_id}"')  # after the active
    assert "1 of 10 active keys" in page
    # The detail view says it, and offers no revoke.
    detail = ava.get(f"{PAGE}/{gone_id}", htmx=True).text
    assert '<span class="badge badge-expired">Expired</span>' in detail
    assert re.search(r'<dt>Expires</dt><dd class="key-expires">Expired on '
                     rf'{moment.date().isoformat()} \d\d:\d\d:\d\d UTC</dd>', detail), detail
    assert "Revoke…" not in detail
    # Revoking it anyway changes nothing.
    before = key_rows(demo.app)
    ava.post(f"{PAGE}/{gone_id}/revoke")
    assert key_rows(demo.app) == before
    assert "has expired" in ava.get(f"{PAGE}/{gone_id}/revoke", htmx=True).text


def test_the_detail_view_shows_the_expiry_or_never(ava, demo):
    never_id = make_key(demo.app, demo, "Never")[0]
    soon_id = make_key(demo.app, demo, "Soon", expires_at=utcnow() + timedelta(days=3))[0]
    assert '<dt>Expires</dt><dd class="key-expires">Never</dd>' in ava.get(f"{PAGE}/{never_id}").text
    detail = ava.get(f"{PAGE}/{soon_id}", htmx=True).text
    stamp = row(demo.app, soon_id).expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert re.search(rf'<dd class="key-expires">{stamp} <span class="key-expiry is-soon">'
                     r'<time[^>]*>Expires in 3 days</time>', detail), detail


def test_activity_records_created_expires_date(ava, demo):
    response = create(ava, False, "custom", (today() + timedelta(days=20)).isoformat(), name="Deploy")
    assert response.status_code == 200
    create(ava, False, "never", name="Forever")
    day = (today() + timedelta(days=20)).isoformat()
    with demo.app.app_context():
        details = dict(db.session.execute(sa.select(AuditEvent.target_label, AuditEvent.detail)
                                          .where(AuditEvent.action == "api_key.created")).all())
    assert [d for label, d in details.items() if label.startswith("Deploy")] == [f"expires {day}"]
    assert [d for label, d in details.items() if label.startswith("Forever")] == [""]
    activity = ava.get("/settings/activity").text
    assert re.search(rf"Created API key Deploy \(fvk_live_\w{{4}}…\) \(expires {day}\)", activity)


def test_the_guidance_says_prefer_keys_that_expire(ava):
    page = ava.get(PAGE).text
    assert "Prefer keys that expire." in page and "rotate before the date" in page


def test_removing_a_member_lists_only_their_keys_still_active(app_context, demo):
    adam = demo.user("adam@acme.test")
    live = keys.create_key(demo.acme.id, adam.id, "Live").key
    gone = keys.create_key(demo.acme.id, adam.id, "Gone", expires_at=utcnow() + timedelta(days=1)).key
    gone.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert [k.id for k in keys.active_keys_of_creator(demo.acme.id, adam.id)] == [live.id]
    membership = workspaces.membership(adam.id, demo.acme.id)
    members.remove_member(demo.acme.id, demo.user("ava@acme.test").id, membership.id)
    db.session.expire_all()
    assert db.session.get(ApiKey, gone.id).revoked_at is None  # it had ended already
    assert db.session.get(ApiKey, live.id).revoked_at is not None


# -- leak reports ---------------------------------------------------------------------------


@pytest.fixture
def signer(app, tmp_path):
    return trusted_signer(app, tmp_path)


def test_a_leak_report_of_an_expired_key_is_true_positive_and_changes_nothing(app, demo, signer):
    key_id, clear = make_key(app, demo, expires_at=utcnow() + timedelta(days=7))
    set_expiry(app, key_id, utcnow() - timedelta(hours=1))
    before = key_rows(app)
    response = post_report(app, leak_report(clear), signer)
    assert response.status_code == 200
    assert response.json == [{"token_hash": hashlib.sha256(clear.encode()).hexdigest(),
                              "token_type": "forcevue_api_key", "label": "true_positive"}]
    assert key_rows(app) == before
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(KeyLeakAlert)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "api_key.leak_revoked")) == 0


# -- storage and the demo ---------------------------------------------------------------------


def test_expires_at_is_a_nullable_timezone_aware_column(app_context):
    columns = {c["name"]: c for c in sa.inspect(db.engine).get_columns("api_keys")}
    assert columns["expires_at"]["nullable"] is True
    assert isinstance(columns["expires_at"]["type"], sa.DateTime)
    if db.engine.dialect.name == "postgresql":
        assert columns["expires_at"]["type"].timezone is True


def test_seed_demo_has_a_key_that_expires_in_three_days(app, runner, demo):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    with app.app_context():
        expiring = db.session.scalars(sa.select(ApiKey).where(ApiKey.expires_at.is_not(None))).all()
        assert len(expiring) == 1  # idempotent
        left = expiring[0].expires_at - utcnow()
        assert timedelta(days=2, hours=23) < left <= timedelta(days=3)
        assert expiring[0].workspace_id == demo.acme.id and expiring[0].is_active


def test_the_history_group_holds_revoked_and_expired_keys_by_when_each_ended(ava, demo):
    now = utcnow()
    live_id = make_key(demo.app, demo, "Live")[0]
    revoked_id = make_key(demo.app, demo, "Revoked a day ago")[0]
    expired_id = make_key(demo.app, demo, "Expired two days ago", expires_at=now + timedelta(days=1))[0]
    latest_id = make_key(demo.app, demo, "Expired an hour ago", expires_at=now + timedelta(days=1))[0]
    with demo.app.app_context():
        keys.revoke_key(demo.acme.id, revoked_id, demo.user("ava@acme.test").id)
    with demo.app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.update(ApiKey.__table__).where(ApiKey.__table__.c.id == revoked_id)
                     .values(revoked_at=now - timedelta(days=1)))
    set_expiry(demo.app, expired_id, now - timedelta(days=2))
    set_expiry(demo.app, latest_id, now - timedelta(hours=1))
    page = ava.get(PAGE).text
    history = page[page.index('id="revoked-keys"'):]
    assert 'id="revoked-group">Revoked and expired <span class="keys-group-count">(3)</span>' in history
    order = [history.index(f'id="key-{k}"') for k in (latest_id, revoked_id, expired_id)]
    assert order == sorted(order)
    assert f'id="key-{live_id}"' not in history and "1 of 10 active keys" in page


def test_only_expired_keys_make_an_expired_group(ava, demo):
    gone_id = make_key(demo.app, demo, "Gone", expires_at=utcnow() + timedelta(days=1))[0]
    set_expiry(demo.app, gone_id, utcnow() - timedelta(days=1))
    assert 'id="revoked-group">Expired <span class="keys-group-count">(1)</span>' in ava.get(PAGE).text


def test_an_expired_keys_name_can_be_used_again(ava, demo):
    gone_id = make_key(demo.app, demo, "Staging smoke tests", expires_at=utcnow() + timedelta(days=1))[0]
    set_expiry(demo.app, gone_id, utcnow() - timedelta(minutes=1))
    response = create(ava, True, "never", name="Staging smoke tests")
    assert response.status_code == 200 and "Copy your new key" in response.text
