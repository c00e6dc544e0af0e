"""The contract of SPEC §5: the envelope on every answer, the endpoints' parameters, limits,
defaults, ordering and pagination, scoping by workspace, and the shared path with the dashboard."""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from fvapp import api_app
from fvapp.api import schemas
from fvapp.extensions import db
from fvapp.models import Initiative, utcnow
from fvapp.services import initiatives, keys
from fvapp.services.errors import DomainError
from fvapp.services.text import clean_text
from tests.support.api import Api, assert_envelope, mint_key
from tests.support.marks import on_postgresql
from tests.support.tracing import PgRoundTrips, engine_of, sql_statements

PG_URL = os.environ.get("TEST_DATABASE_URL")


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


@pytest.fixture
def api(app, demo, ava):
    return Api(app.test_client(), mint_key(demo.app, demo.acme, ava))


def _make(demo, workspace, count, archived=False):
    """`count` initiatives, one second apart, oldest first."""
    start = utcnow() - timedelta(hours=1)
    made = []
    for n in range(count):
        at = start + timedelta(seconds=n)
        made.append(Initiative(workspace_id=workspace.id, title=f"Item {n}", created_at=at,
                               updated_at=at, archived_at=at if archived else None))
    with demo.app.app_context():
        db.session.add_all(made)
        db.session.commit()


def _initiative(demo, workspace, title, description=None):
    """The id of an initiative made by the dashboard's service."""
    with demo.app.app_context():
        return initiatives.create_initiative(workspace.id, None, title, description).id


def _titles(response):
    return [item["title"] for item in response.get_json()["data"]["items"]]


# -- the envelope on every class of answer -------------------------------------------------


def test_success_envelope_and_request_id(api):
    first, second = api.get("/me"), api.get("/me")
    assert_envelope(first, 200)
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


def test_unknown_path_is_a_404_envelope_with_or_without_a_key(api, app):
    for client in (api, Api(app.test_client())):
        assert_envelope(client.get("/nope"), 404, "NOT_FOUND")
        assert_envelope(client.get("/initiatives/x/y"), 404, "NOT_FOUND")


@pytest.mark.parametrize(("method", "path"), [
    ("DELETE", "/initiatives/00000000-0000-4000-8000-000000000000"),
    ("PUT", "/initiatives/00000000-0000-4000-8000-000000000000"),
    ("POST", "/me"),
    ("DELETE", "/initiatives"),
    ("OPTIONS", "/initiatives"),
    ("OPTIONS", "/openapi.json"),
    ("POST", "/openapi.json"),
])
def test_wrong_method_is_a_405_envelope_with_allow(api, method, path):
    response = api.open(path, method)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"]
    assert "OPTIONS" not in response.headers["Allow"]


def test_no_api_route_answers_options_by_itself(app):
    # Flask adds OPTIONS to every route unless told not to; under /api/v1 it would answer 200
    # with an empty text/html body, outside the envelope.
    api_rules = [rule for rule in api_app(app).url_map.iter_rules()
                 if rule.endpoint.startswith("api.")]
    assert api_rules
    assert [rule.rule for rule in api_rules if "OPTIONS" in rule.methods] == []


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v2/initiatives", "/api/v1/nope"])
def test_everything_under_api_is_the_api_even_unrouted(app, path):
    response = app.test_client().get(path)
    assert_envelope(response, 404, "NOT_FOUND")
    assert "Set-Cookie" not in response.headers  # the browser session is never opened there


@pytest.mark.parametrize("path", ["/apis", "/api-v1/me", "/nope/api/v1"])
def test_paths_that_only_look_like_the_api_get_the_html_page(app, path):
    response = app.test_client().get(path)
    assert response.status_code == 404 and response.mimetype == "text/html"


def test_the_request_id_header_belongs_to_the_envelope(api, app):
    for response in [api.get("/me"), api.get("/nope"), api.open("/me", "DELETE"),
                     Api(app.test_client()).get("/me"), api.get("/initiatives?limit=0")]:
        assert response.headers.getlist("X-Request-Id") == [response.get_json()["meta"]["requestId"]]
    document = app.test_client().get("/api/v1/openapi.json")
    assert "meta" not in document.get_json()
    assert "X-Request-Id" not in document.headers  # no envelope, so no meta.requestId to echo


def test_the_api_blueprint_has_no_error_handlers_of_its_own(app):
    # One place decides every API error answer: the app-level handlers of fvapp/errors.py,
    # which also see what a blueprint's handlers never do (routing 404/405).
    assert app.error_handler_spec.get("api", {}) == {}


def test_malformed_json_is_400_with_details(api):
    response = api.post("/initiatives", data='{"title": ', headers={"Content-Type": "application/json"})
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "body"
    assert "JSON" in body["details"][0]["message"]


@pytest.mark.parametrize("raw", ["", "[]", '"title"', "null", "42"])
def test_a_body_that_is_not_an_object_is_400(api, raw):
    response = api.post("/initiatives", data=raw, headers={"Content-Type": "application/json"})
    assert assert_envelope(response, 400, "VALIDATION_ERROR")["details"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x"])
def test_a_body_that_is_not_json_is_415(api, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.post("/initiatives", data='{"title": "x"}', headers=headers)
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    patched = api.patch(f"/initiatives/{uuid.uuid4()}", data="title=x", headers=headers)
    assert_envelope(patched, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_a_body_over_1_mib_is_413(api, demo):
    big = '{"title": "x", "description": "' + "d" * (1024 * 1024) + '"}'
    response = api.post("/initiatives", data=big, headers={"Content-Type": "application/json"})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert demo.scalar(select(Initiative)) is None


def test_an_unexpected_exception_is_a_500_envelope_without_a_traceback(api, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(initiatives, "page_initiatives", explode)
    response = api.get("/initiatives")
    body = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["error"] == "Internal error"


def test_an_unreachable_database_is_a_503_envelope_with_retry_after(app_factory, app, backend):
    url = ("sqlite:////nonexistent-dir/fvapp.sqlite3" if backend == "sqlite"
           else "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2")
    down = app_factory(SQLALCHEMY_DATABASE_URI=url)
    response = down.test_client().get(
        "/api/v1/me", headers={"Authorization": f"Bearer {keys.generate_key()}"}
    )
    assert_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert int(response.headers["Retry-After"]) > 0


def test_every_answer_is_json_never_html(api):
    for response in [api.get("/nope"), api.open("/me", "DELETE"), api.get("/initiatives?limit=x"),
                     Api(api.client).get("/me"), api.get("/me")]:
        assert response.mimetype == "application/json"
        assert "<html" not in response.get_data(as_text=True).lower()


# -- GET /initiatives ----------------------------------------------------------------------


def test_list_defaults_to_20_active_newest_first(api, demo):
    _make(demo, demo.acme, 25)
    _make(demo, demo.acme, 2, archived=True)
    body = assert_envelope(api.get("/initiatives"), 200)
    assert _titles(api.get("/initiatives")) == [f"Item {n}" for n in range(24, 4, -1)]
    assert body["data"]["pagination"] == {"limit": 20, "offset": 0, "has_more": True}


def test_pagination_walks_to_the_end(api, demo):
    _make(demo, demo.acme, 25)
    page = api.get("/initiatives?limit=10&offset=20").get_json()["data"]
    assert [i["title"] for i in page["items"]] == [f"Item {n}" for n in range(4, -1, -1)]
    assert page["pagination"] == {"limit": 10, "offset": 20, "has_more": False}
    exact = api.get("/initiatives?limit=5&offset=20").get_json()["data"]["pagination"]
    assert exact["has_more"] is False  # exactly the last 5: nothing follows
    assert api.get("/initiatives?limit=5&offset=19").get_json()["data"]["pagination"]["has_more"]
    assert _titles(api.get("/initiatives?offset=1000")) == []


def test_limit_bounds_1_and_100_are_accepted(api, demo):
    _make(demo, demo.acme, 101)
    assert len(_titles(api.get("/initiatives?limit=1"))) == 1
    assert len(_titles(api.get("/initiatives?limit=100"))) == 100


def test_archived_true_lists_only_archived(api, demo):
    _make(demo, demo.acme, 2)
    _make(demo, demo.acme, 3, archived=True)
    assert len(_titles(api.get("/initiatives?archived=true"))) == 3
    assert len(_titles(api.get("/initiatives?archived=false"))) == 2


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=-1", "limit"), ("limit=abc", "limit"),
    ("limit=1.0", "limit"), ("limit=", "limit"), ("limit=99999999999999999999999", "limit"),
    ("offset=-1", "offset"), ("offset=x", "offset"), ("offset=2147483648", "offset"),
    ("archived=maybe", "archived"), ("archived=True", "archived"), ("archived=1", "archived"),
    ("limit=5&limit=6", "limit"),
])
def test_bad_query_parameters_are_400_with_details(api, query, field):
    body = assert_envelope(api.get(f"/initiatives?{query}"), 400, "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == [field]
    assert all(d["message"] for d in body["details"])


def test_several_bad_parameters_are_all_reported(api):
    body = assert_envelope(api.get("/initiatives?limit=0&offset=-1&archived=maybe"), 400,
                           "VALIDATION_ERROR")
    assert sorted(d["field"] for d in body["details"]) == ["archived", "limit", "offset"]


# -- POST /initiatives ---------------------------------------------------------------------


def test_create_answers_201_with_the_initiative(api, demo, ava):
    response = api.post("/initiatives", json={"title": "  Launch v2  ", "description": "Big"})
    data = assert_envelope(response, 201)["data"]
    assert set(data) == {"id", "title", "description", "archived", "archived_at", "created_at",
                         "updated_at"}
    assert data["title"] == "Launch v2" and data["description"] == "Big"
    assert data["archived"] is False and data["archived_at"] is None
    item = demo.get(Initiative, uuid.UUID(data["id"]))
    assert item.workspace_id == demo.acme.id and item.created_by_id == ava.id


def test_title_of_200_is_accepted_and_201_is_400(api):
    assert api.post("/initiatives", json={"title": "t" * 200}).status_code == 201
    body = assert_envelope(api.post("/initiatives", json={"title": "t" * 201}), 400,
                           "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "title"


@pytest.mark.parametrize(("raw", "stored"), [
    (" " + "x" * 200 + " ", "x" * 200),  # 202 characters, 200 once trimmed
    ("\t  Padded\n", "Padded"),
])
def test_titles_follow_the_dashboards_rule_trimmed_then_counted(api, raw, stored):
    assert initiatives.clean_title(raw) == stored  # what the dashboard accepts
    data = assert_envelope(api.post("/initiatives", json={"title": raw}), 201)["data"]
    assert data["title"] == stored


def test_descriptions_follow_the_dashboards_rule_crlf_counts_as_one(api):
    fits = "\r\n".join(["x"] * 5000)  # 14998 characters sent, 9999 once CRLF is one break
    assert len(initiatives.clean_description(fits)) == 9999
    data = assert_envelope(api.post("/initiatives", json={"title": "t", "description": fits}),
                           201)["data"]
    assert data["description"] == fits.replace("\r\n", "\n")
    too_long = "\r\n".join(["x"] * 5001)  # 10001 once normalized
    body = assert_envelope(api.post("/initiatives", json={"title": "t", "description": too_long}),
                           400, "VALIDATION_ERROR")
    assert body["details"] == [{"field": "description", "message":
                                "Descriptions can be at most 10000 characters (this one has 10001)."}]
    assert assert_envelope(api.post("/initiatives", json={"title": "t", "description": " \r\n "}),
                           201)["data"]["description"] is None


@pytest.mark.parametrize(("payload", "detail"), [
    ({"title": ""}, {"field": "title", "message": "Enter a title."}),
    ({"title": "   "}, {"field": "title", "message": "Enter a title."}),
    ({"title": "\u3000\n"}, {"field": "title", "message": "Enter a title."}),
    ({"title": "a\u0000b"}, {"field": "title", "message": "Titles cannot contain NUL characters."}),
    ({"title": "t" * 201},
     {"field": "title", "message": "Titles can be at most 200 characters (this one has 201)."}),
    ({"title": "ok", "description": "a\u0000"},
     {"field": "description", "message": "Descriptions cannot contain NUL characters."}),
])
def test_field_messages_are_the_services_sentences(api, payload, detail):
    body = assert_envelope(api.post("/initiatives", json=payload), 400, "VALIDATION_ERROR")
    assert body["details"] == [detail]


@pytest.mark.parametrize("payload", [
    {}, {"title": 5}, {"title": None}, {"title": "ok", "owner": "me"}, {"title": "   "},
    {"title": "ok", "description": ["x"]}, {"title": "x" * 300, "description": "\u0000"},
])
def test_every_validation_message_is_a_readable_sentence(api, payload):
    body = assert_envelope(api.post("/initiatives", json=payload), 400, "VALIDATION_ERROR")
    for detail in body["details"]:
        message = detail["message"]
        assert message[0].isupper() and message.endswith("."), message
        assert not any(sign in message for sign in ("^", "\\", "[", "pattern")), message


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "   "}, "title"),
    ({"title": None}, "title"),
    ({"title": 5}, "title"),
    ({"title": "a\u0000b"}, "title"),
    ({"title": "ok", "description": "d" * 10001}, "description"),
    ({"title": "ok", "description": 7}, "description"),
    ({"title": "ok", "description": "a\u0000"}, "description"),
    ({"title": "ok", "owner": "me"}, "owner"),
])
def test_bad_bodies_are_400_with_details_and_create_nothing(api, demo, payload, field):
    body = assert_envelope(api.post("/initiatives", json=payload), 400, "VALIDATION_ERROR")
    assert field in [d["field"] for d in body["details"]]
    assert demo.scalar(select(Initiative)) is None


def test_description_of_10000_is_accepted(api):
    assert api.post("/initiatives", json={"title": "ok", "description": "d" * 10000}).status_code == 201


# -- GET and PATCH /initiatives/{id} -------------------------------------------------------


def test_get_one(api, demo):
    item_id = _initiative(demo, demo.acme, "Mine", "words")
    data = assert_envelope(api.get(f"/initiatives/{item_id}"), 200)["data"]
    assert data["id"] == str(item_id) and data["title"] == "Mine"


@pytest.mark.parametrize("make_id", [
    pytest.param(lambda demo: _initiative(demo, demo.fox, "Fox"),
                 id="another-workspace"),
    pytest.param(lambda demo: uuid.uuid4(), id="unknown"),
    pytest.param(lambda demo: "not-a-uuid", id="not-a-uuid"),
])
def test_an_id_outside_the_workspace_is_404(api, demo, make_id):
    initiative_id = make_id(demo)
    assert_envelope(api.get(f"/initiatives/{initiative_id}"), 404, "NOT_FOUND")
    patched = api.patch(f"/initiatives/{initiative_id}", json={"title": "Taken", "archived": True})
    assert_envelope(patched, 404, "NOT_FOUND")


def test_another_workspaces_initiative_stays_untouched(api, demo):
    theirs = _initiative(demo, demo.fox, "Fox secret")
    api.patch(f"/initiatives/{theirs}", json={"title": "Taken", "archived": True})
    theirs = demo.get(Initiative, theirs)
    assert theirs.title == "Fox secret" and theirs.archived_at is None
    assert "Fox secret" not in str(api.get("/initiatives").get_json())


def test_patch_archive_sets_and_unarchive_clears_archived_at(api, demo):
    item_id = _initiative(demo, demo.acme, "Old plan")
    archived = assert_envelope(api.patch(f"/initiatives/{item_id}", json={"archived": True}), 200)
    assert archived["data"]["archived"] is True and archived["data"]["archived_at"]
    assert demo.get(Initiative, item_id).archived_at is not None
    assert _titles(api.get("/initiatives")) == []
    assert _titles(api.get("/initiatives?archived=true")) == ["Old plan"]

    restored = api.patch(f"/initiatives/{item_id}", json={"archived": False}).get_json()["data"]
    assert restored["archived"] is False and restored["archived_at"] is None
    assert demo.get(Initiative, item_id).archived_at is None


def test_patch_changes_only_the_fields_given(api, demo):
    item_id = _initiative(demo, demo.acme, "Title", "Words")
    data = api.patch(f"/initiatives/{item_id}", json={"title": "New title"}).get_json()["data"]
    assert data["title"] == "New title" and data["description"] == "Words"
    data = api.patch(f"/initiatives/{item_id}", json={"description": None}).get_json()["data"]
    assert data["title"] == "New title" and data["description"] is None
    data = assert_envelope(api.patch(f"/initiatives/{item_id}", json={}), 200)["data"]
    assert data["title"] == "New title"


@pytest.mark.parametrize(("payload", "field"), [
    ({"title": None}, "title"), ({"title": ""}, "title"), ({"title": "t" * 201}, "title"),
    ({"archived": "true"}, "archived"), ({"archived": 1}, "archived"), ({"archived": None}, "archived"),
    ({"deleted": True}, "deleted"),
])
def test_bad_patches_are_400_and_change_nothing(api, demo, payload, field):
    item_id = _initiative(demo, demo.acme, "Keep")
    body = assert_envelope(api.patch(f"/initiatives/{item_id}", json=payload), 400,
                           "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == [field]
    item = demo.get(Initiative, item_id)
    assert item.title == "Keep" and item.archived_at is None


def test_timestamps_are_utc_with_milliseconds(api, demo):
    data = api.post("/initiatives", json={"title": "When"}).get_json()["data"]
    item = demo.get(Initiative, uuid.UUID(data["id"]))
    expected = item.created_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{item.created_at.microsecond // 1000:03d}Z"
    assert data["created_at"] == expected


# -- what each operation costs the database ------------------------------------------------


def _statements(app, send, status):
    with sql_statements(engine_of(app)) as seen:
        assert_envelope(send(), status)
    return [statement.split()[0] for statement in seen]


def test_each_operation_sends_the_key_read_and_its_own_statements_only(api, app, demo):
    """The hook's key read, then: a read, its one SELECT; a create, its INSERT … RETURNING; a
    change, its UPDATE … RETURNING, which leaves the row as it was when nothing changes (a
    PATCH with no field: the SELECT of the row). No read after a write: a write answers the
    row as it wrote it."""
    _make(demo, demo.acme, 60)
    item_id = _initiative(demo, demo.acme, "Counted")
    assert_envelope(api.get("/me"), 200)  # the key's first use records last_used_at
    assert _statements(app, lambda: api.get("/me"), 200) == ["SELECT"]
    assert _statements(app, lambda: api.get("/initiatives?limit=50"), 200) == ["SELECT"] * 2
    assert _statements(app, lambda: api.get(f"/initiatives/{item_id}"), 200) == ["SELECT"] * 2
    assert _statements(app, lambda: api.post("/initiatives", json={"title": "New"}),
                       201) == ["SELECT", "INSERT"]
    rename = {"title": "Renamed", "archived": True}
    assert _statements(app, lambda: api.patch(f"/initiatives/{item_id}", json=rename),
                       200) == ["SELECT", "UPDATE"]
    written = api.get(f"/initiatives/{item_id}").get_json()["data"]
    assert _statements(app, lambda: api.patch(f"/initiatives/{item_id}", json=rename),
                       200) == ["SELECT", "UPDATE"]
    assert api.get(f"/initiatives/{item_id}").get_json()["data"] == written
    assert _statements(app, lambda: api.patch(f"/initiatives/{item_id}", json={}),
                       200) == ["SELECT", "SELECT"]


def test_what_a_write_answers_is_what_a_read_then_finds(api, demo):
    created = assert_envelope(api.post("/initiatives", json={"title": " New ",
                                                             "description": "a\r\nb"}), 201)
    item_id = created["data"]["id"]
    assert api.get(f"/initiatives/{item_id}").get_json()["data"] == created["data"]
    patched = assert_envelope(api.patch(f"/initiatives/{item_id}", json={"archived": True}), 200)
    assert patched["data"]["archived"] is True
    assert patched["data"]["updated_at"] > created["data"]["updated_at"]
    assert api.get(f"/initiatives/{item_id}").get_json()["data"] == patched["data"]
    listed = api.get("/initiatives?archived=true").get_json()["data"]["items"]
    assert listed == [patched["data"]]


def test_a_patch_moves_updated_at_only_when_something_changed(api, demo):
    """One UPDATE decides in SQL: the same title, description or archived state again keeps
    updated_at (and an archived initiative its archived_at); any real change moves it."""
    item_id = _initiative(demo, demo.acme, "Same")
    first = api.get(f"/initiatives/{item_id}").get_json()["data"]

    def patch(**fields):
        return assert_envelope(api.patch(f"/initiatives/{item_id}", json=fields), 200)["data"]

    assert patch(title=" Same ", description=None, archived=False) == first
    archived = patch(archived=True)
    assert archived["archived"] is True and archived["updated_at"] > first["updated_at"]
    assert archived["archived_at"] == archived["updated_at"]
    assert patch(archived=True, title="Same") == archived  # archived_at kept
    described = patch(description="words", archived=True)
    assert described["updated_at"] > archived["updated_at"]
    assert described["archived_at"] == archived["archived_at"]
    assert patch(description="words") == described
    restored = patch(archived=False)
    assert restored["archived_at"] is None and restored["updated_at"] > described["updated_at"]
    assert patch(title="Other")["updated_at"] > restored["updated_at"]
    assert api.get(f"/initiatives/{item_id}").get_json()["data"]["title"] == "Other"


def test_writes_load_no_orm_objects_and_flush_nothing(api, demo):
    """POST and PATCH are one ORM-enabled INSERT/UPDATE … RETURNING each: no Initiative is
    loaded or added, so the unit of work has nothing to flush (its before_flush never fires)."""
    item_id = _initiative(demo, demo.acme, "Written")
    seen = []

    def load(target, context):
        seen.append(("load", target))

    def before_flush(session, flush_context, instances):
        seen.append(("flush", list(session.new) + list(session.dirty)))

    event.listen(Initiative, "load", load)
    event.listen(Session, "before_flush", before_flush)
    try:
        assert_envelope(api.post("/initiatives", json={"title": "New"}), 201)
        assert_envelope(api.patch(f"/initiatives/{item_id}", json={"title": "Changed"}), 200)
        assert_envelope(api.patch(f"/initiatives/{uuid.uuid4()}", json={"title": "No"}), 404,
                        "NOT_FOUND")
    finally:
        event.remove(Initiative, "load", load)
        event.remove(Session, "before_flush", before_flush)
    assert seen == []


def test_reads_load_no_orm_objects(api, demo):
    """GET /initiatives and GET /initiatives/{id} select the response's columns into the
    response model: no Initiative is built (the ORM's load event never fires)."""
    _make(demo, demo.acme, 30)
    item_id = _initiative(demo, demo.acme, "Read")
    loaded = []

    def load(target, context):
        loaded.append(target)

    event.listen(Initiative, "load", load)
    try:
        assert len(assert_envelope(api.get("/initiatives?limit=50"), 200)["data"]["items"]) == 31
        assert_envelope(api.get(f"/initiatives/{item_id}"), 200)
        assert_envelope(api.get("/initiatives?archived=true"), 200)
    finally:
        event.remove(Initiative, "load", load)
    assert loaded == []


@on_postgresql
def test_a_read_on_postgresql_is_one_round_trip_after_the_key_read(app_factory, demo, ava,
                                                                    database_url):
    """libpq's own trace: a read's SELECT goes alone, in autocommit (no BEGIN before it, no
    ROLLBACK when its connection goes back to the pool)."""
    served = app_factory()
    trips = PgRoundTrips(engine_of(served))
    try:
        api = Api(served.test_client(), mint_key(demo.app, demo.acme, ava))
        item_id = _initiative(demo, demo.acme, "Traced")
        for _ in range(7):  # connects, records last_used_at; psycopg prepares the statements
            assert_envelope(api.get("/initiatives?limit=50"), 200)
            assert_envelope(api.get(f"/initiatives/{item_id}"), 200)
        before = trips.counts()
        for _ in range(5):
            assert_envelope(api.get("/initiatives?limit=50"), 200)
            assert_envelope(api.get(f"/initiatives/{item_id}"), 200)
        spent = trips.counts() - before
        assert sum(spent.values()) == 2 * 10, spent
        assert not spent.keys() & {"BEGIN", "COMMIT", "ROLLBACK", "ping"}, spent
    finally:
        trips.close()


@on_postgresql
def test_a_write_on_postgresql_is_its_one_statement_in_autocommit(app_factory, demo, ava,
                                                                   database_url):
    """libpq's own trace: POST and PATCH each send, after the key read, their one
    INSERT/UPDATE … RETURNING, in autocommit (transaction.atomic_statement: one statement is
    its own unit of work): 2 round trips in all, no BEGIN, COMMIT, ROLLBACK or ping."""
    served = app_factory()
    trips = PgRoundTrips(engine_of(served))
    try:
        api = Api(served.test_client(), mint_key(demo.app, demo.acme, ava))
        item_id = _initiative(demo, demo.acme, "Traced")

        def both(n):
            assert_envelope(api.post("/initiatives", json={"title": f"New {n}"}), 201)
            assert_envelope(api.patch(f"/initiatives/{item_id}", json={"title": f"T {n}"}), 200)

        for n in range(7):  # connects, records last_used_at; psycopg prepares the statements
            both(n)
        before = trips.counts()
        for n in range(5):
            both(n + 7)
        spent = trips.counts() - before
        assert sum(spent.values()) == 2 * 5 * 2, spent
        assert not spent.keys() & {"BEGIN", "COMMIT", "ROLLBACK", "ping"}, spent
    finally:
        trips.close()


# -- one path with the dashboard -----------------------------------------------------------


def test_initiatives_made_through_the_api_appear_on_the_dashboard(api, browser):
    api.post("/initiatives", json={"title": "Made by a script"})
    browser.login("mia@acme.test")
    assert "Made by a script" in browser.get("/").text


def test_initiatives_made_on_the_dashboard_appear_in_the_api(api, browser):
    browser.login("ava@acme.test")
    browser.post("/initiatives", {"title": "Made by a person"})
    assert _titles(api.get("/initiatives")) == ["Made by a person"]


# -- the OpenAPI document ------------------------------------------------------------------


def test_openapi_is_public_and_generated_from_the_models(app):
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert {(path, method) for path, ops in doc["paths"].items() for method in ops} == {
        ("/me", "get"), ("/initiatives", "get"), ("/initiatives", "post"),
        ("/initiatives/{initiative_id}", "get"), ("/initiatives/{initiative_id}", "patch")}
    create = doc["components"]["schemas"]["InitiativeCreate"]
    assert create["properties"]["title"]["type"] == "string"
    assert "200" in create["properties"]["title"]["description"]
    assert create["required"] == ["title"] and create["additionalProperties"] is False
    query = {p["name"]: p["schema"] for p in doc["paths"]["/initiatives"]["get"]["parameters"]}
    assert query["limit"] == {**query["limit"], "minimum": 1, "maximum": 100, "default": 20}
    assert query["archived"]["enum"] == ["true", "false"]
    assert set(doc["paths"]["/initiatives"]["post"]["responses"]) == {
        "201", "400", "401", "403", "413", "415", "429", "500", "503"}
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert "PAID_PLAN_REQUIRED" in error["properties"]["code"]["enum"]


# Characters where Python's str.strip, JSON Schema's (ECMA-262) \s and the visible world
# disagree or meet: NUL, \x1c-\x1f and \x85 (Python whitespace only), \ufeff (ECMA only), a
# zero-width space (neither).
TRICKY = " \t\r\n\x0b\x0c\x00\x07\x1b\x7f\x1c\x1f\x85\xa0\u1680\u2000\u2028\u202e\u2066\u3000\ufeff\u200bab"


@settings(database=None, max_examples=400, deadline=None)
@given(text=st.text(st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=10),
       max_length=st.integers(1, 4))
def test_the_documented_title_pattern_accepts_exactly_what_the_service_accepts(text, max_length):
    pattern = schemas.trimmed_text_pattern(max_length)
    try:
        clean_text(text, field="title", max_length=max_length, what="Titles", required="Enter it.")
        accepted = True
    except DomainError:
        accepted = False
    assert jsonschema_rs.validator_for({"type": "string", "pattern": pattern}).is_valid(text) is accepted
    assert (re.fullmatch(pattern, text) is not None) is accepted  # how schemathesis draws


@settings(database=None, max_examples=400, deadline=None)
@given(text=st.text(st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=10))
def test_the_documented_description_pattern_accepts_what_the_service_accepts(text):
    pattern = schemas.trimmed_text_pattern(None, multiline=True)
    try:
        clean_text(text, field="description", max_length=10_000, what="Descriptions",
                   multiline=True)
        accepted = True
    except DomainError:
        accepted = False
    assert jsonschema_rs.validator_for({"type": "string", "pattern": pattern}).is_valid(text) is accepted
    assert (re.fullmatch(pattern, text) is not None) is accepted


@pytest.mark.parametrize("body", [
    {"title": " " + "x" * 200 + " "}, {"title": "x" * 200}, {"title": "x" * 201},
    {"title": "a\tb"}, {"title": "\u202eexe.txt"}, {"title": "x", "description": "a\r\n\tb"},
    {"title": "x", "description": "a\x0bb"}, {"title": "x", "description": "\u2066x"},
    {"title": "\u3000"}, {"title": "\x1c"}, {"title": "\ufeff"}, {"title": "a\u0000"},
    {"title": "x", "description": "d" * 10000}, {"title": "x", "description": "\n \t"},
    {"title": "x", "description": "\u0000"},
])
def test_openapi_json_documents_the_rule_the_api_applies(api, body):
    schema = api.client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    documented = jsonschema_rs.validator_for(schema["InitiativeCreate"]).is_valid(body)
    assert (api.post("/initiatives", json=body).status_code == 201) is documented


def test_a_field_given_twice_is_refused_not_last_one_wins(api):
    response = api.post("/initiatives", data=b'{"title": "first", "title": "second"}',
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["details"] == [{"field": "title", "message": "Give this field once."}]


def test_json_in_another_charset_is_unsupported(api):
    response = api.post("/initiatives", data=b'{"title": "x"}',
                        headers={"Content-Type": "application/json; charset=utf-16"})
    assert response.status_code == 415
    assert response.json["code"] == "UNSUPPORTED_MEDIA_TYPE"
    ok = api.post("/initiatives", data=b'{"title": "x"}',
                  headers={"Content-Type": "application/json; charset=UTF-8"})
    assert ok.status_code == 201
