"""The contract of SPEC §5: the envelope on every answer, the endpoints' parameters, limits,
defaults, ordering and pagination, scoping by workspace, and the shared path with the dashboard."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from api_helpers import Api, assert_envelope, mint_key
from sqlalchemy import select

from fvapp.extensions import db
from fvapp.models import Initiative, utcnow
from fvapp.services import initiatives, keys


@pytest.fixture
def ava(demo):
    return demo.user("ava@acme.test")


@pytest.fixture
def api(app, demo, ava):
    return Api(app.test_client(), mint_key(demo.acme, ava))


def _make(workspace, count, archived=False):
    """`count` initiatives, one second apart, oldest first."""
    start = utcnow() - timedelta(hours=1)
    made = []
    for n in range(count):
        at = start + timedelta(seconds=n)
        made.append(Initiative(workspace_id=workspace.id, title=f"Item {n}", created_at=at,
                               updated_at=at, archived_at=at if archived else None))
    db.session.add_all(made)
    db.session.commit()
    return made


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
])
def test_wrong_method_is_a_405_envelope_with_allow(api, method, path):
    response = api.open(path, method)
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"]


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


def test_a_body_over_1_mib_is_413(api):
    big = '{"title": "x", "description": "' + "d" * (1024 * 1024) + '"}'
    response = api.post("/initiatives", data=big, headers={"Content-Type": "application/json"})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert db.session.scalar(select(Initiative)) is None


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
    _make(demo.acme, 25)
    _make(demo.acme, 2, archived=True)
    body = assert_envelope(api.get("/initiatives"), 200)
    assert _titles(api.get("/initiatives")) == [f"Item {n}" for n in range(24, 4, -1)]
    assert body["data"]["pagination"] == {"limit": 20, "offset": 0, "has_more": True}


def test_pagination_walks_to_the_end(api, demo):
    _make(demo.acme, 25)
    page = api.get("/initiatives?limit=10&offset=20").get_json()["data"]
    assert [i["title"] for i in page["items"]] == [f"Item {n}" for n in range(4, -1, -1)]
    assert page["pagination"] == {"limit": 10, "offset": 20, "has_more": False}
    exact = api.get("/initiatives?limit=5&offset=20").get_json()["data"]["pagination"]
    assert exact["has_more"] is False  # exactly the last 5: nothing follows
    assert api.get("/initiatives?limit=5&offset=19").get_json()["data"]["pagination"]["has_more"]
    assert _titles(api.get("/initiatives?offset=1000")) == []


def test_limit_bounds_1_and_100_are_accepted(api, demo):
    _make(demo.acme, 101)
    assert len(_titles(api.get("/initiatives?limit=1"))) == 1
    assert len(_titles(api.get("/initiatives?limit=100"))) == 100


def test_archived_true_lists_only_archived(api, demo):
    _make(demo.acme, 2)
    _make(demo.acme, 3, archived=True)
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
    item = db.session.get(Initiative, uuid.UUID(data["id"]))
    assert item.workspace_id == demo.acme.id and item.created_by_id == ava.id


def test_title_of_200_is_accepted_and_201_is_400(api):
    assert api.post("/initiatives", json={"title": "t" * 200}).status_code == 201
    body = assert_envelope(api.post("/initiatives", json={"title": "t" * 201}), 400,
                           "VALIDATION_ERROR")
    assert body["details"][0]["field"] == "title"


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
def test_bad_bodies_are_400_with_details_and_create_nothing(api, payload, field):
    body = assert_envelope(api.post("/initiatives", json=payload), 400, "VALIDATION_ERROR")
    assert field in [d["field"] for d in body["details"]]
    assert db.session.scalar(select(Initiative)) is None


def test_description_of_10000_is_accepted(api):
    assert api.post("/initiatives", json={"title": "ok", "description": "d" * 10000}).status_code == 201


# -- GET and PATCH /initiatives/{id} -------------------------------------------------------


def test_get_one(api, demo):
    item = initiatives.create_initiative(demo.acme.id, None, "Mine", "words")
    data = assert_envelope(api.get(f"/initiatives/{item.id}"), 200)["data"]
    assert data["id"] == str(item.id) and data["title"] == "Mine"


@pytest.mark.parametrize("make_id", [
    pytest.param(lambda demo: initiatives.create_initiative(demo.fox.id, None, "Fox", None).id,
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
    theirs = initiatives.create_initiative(demo.fox.id, None, "Fox secret", None)
    api.patch(f"/initiatives/{theirs.id}", json={"title": "Taken", "archived": True})
    db.session.refresh(theirs)
    assert theirs.title == "Fox secret" and theirs.archived_at is None
    assert "Fox secret" not in str(api.get("/initiatives").get_json())


def test_patch_archive_sets_and_unarchive_clears_archived_at(api, demo):
    item = initiatives.create_initiative(demo.acme.id, None, "Old plan", None)
    archived = assert_envelope(api.patch(f"/initiatives/{item.id}", json={"archived": True}), 200)
    assert archived["data"]["archived"] is True and archived["data"]["archived_at"]
    db.session.refresh(item)
    assert item.archived_at is not None
    assert _titles(api.get("/initiatives")) == []
    assert _titles(api.get("/initiatives?archived=true")) == ["Old plan"]

    restored = api.patch(f"/initiatives/{item.id}", json={"archived": False}).get_json()["data"]
    assert restored["archived"] is False and restored["archived_at"] is None
    db.session.refresh(item)
    assert item.archived_at is None


def test_patch_changes_only_the_fields_given(api, demo):
    item = initiatives.create_initiative(demo.acme.id, None, "Title", "Words")
    data = api.patch(f"/initiatives/{item.id}", json={"title": "New title"}).get_json()["data"]
    assert data["title"] == "New title" and data["description"] == "Words"
    data = api.patch(f"/initiatives/{item.id}", json={"description": None}).get_json()["data"]
    assert data["title"] == "New title" and data["description"] is None
    data = assert_envelope(api.patch(f"/initiatives/{item.id}", json={}), 200)["data"]
    assert data["title"] == "New title"


@pytest.mark.parametrize(("payload", "field"), [
    ({"title": None}, "title"), ({"title": ""}, "title"), ({"title": "t" * 201}, "title"),
    ({"archived": "true"}, "archived"), ({"archived": 1}, "archived"), ({"archived": None}, "archived"),
    ({"deleted": True}, "deleted"),
])
def test_bad_patches_are_400_and_change_nothing(api, demo, payload, field):
    item = initiatives.create_initiative(demo.acme.id, None, "Keep", None)
    body = assert_envelope(api.patch(f"/initiatives/{item.id}", json=payload), 400,
                           "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == [field]
    db.session.refresh(item)
    assert item.title == "Keep" and item.archived_at is None


def test_timestamps_are_utc_with_milliseconds(api, demo):
    data = api.post("/initiatives", json={"title": "When"}).get_json()["data"]
    item = db.session.get(Initiative, uuid.UUID(data["id"]))
    expected = item.created_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{item.created_at.microsecond // 1000:03d}Z"
    assert data["created_at"] == expected


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
    assert create["properties"]["title"]["maxLength"] == 200
    assert create["required"] == ["title"] and create["additionalProperties"] is False
    query = {p["name"]: p["schema"] for p in doc["paths"]["/initiatives"]["get"]["parameters"]}
    assert query["limit"] == {**query["limit"], "minimum": 1, "maximum": 100, "default": 20}
    assert query["archived"]["enum"] == ["true", "false"]
    assert set(doc["paths"]["/initiatives"]["post"]["responses"]) == {
        "201", "400", "401", "403", "413", "415", "429", "500", "503"}
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert "PAID_PLAN_REQUIRED" in error["properties"]["code"]["enum"]
