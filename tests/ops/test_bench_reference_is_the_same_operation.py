"""`make bench` compares fvapp with benchmarks/reference_app.py operation by operation; the
comparison is honest only while the reference answers what fvapp answers: the same envelope,
the same fields in the same order with the same JSON types, the same compact bytes, the same
values for the same rows. Checked here on one database for both (PostgreSQL: the reference
speaks psycopg)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import make_url

from benchmarks import reference_app
from tests.support.api import bearer, mint_key


@pytest.fixture
def reference(app, backend, database_url):
    if backend != "postgresql":
        pytest.skip("the reference app reads PostgreSQL through psycopg only")
    reference_app.app.config["REFERENCE_DATABASE_URL"] = (
        make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False))
    yield reference_app.app.test_client()
    reference_app.close()


def shape(value):
    """The JSON's structure: the keys in order, and the type of every leaf."""
    if isinstance(value, dict):
        return [(name, shape(item)) for name, item in value.items()]
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def answer(response, status: int) -> dict:
    """The parsed body, after the envelope's checks (status, header, compact bytes)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = json.loads(response.get_data())
    assert response.headers["X-Request-Id"] == body["meta"]["requestId"]
    assert response.get_data() == json.dumps(body, separators=(",", ":"),
                                              ensure_ascii=False).encode()
    return body


def same(fv, ref, status: int = 200, *, values: bool = True) -> dict:
    """fvapp's and the reference's answers agree in shape (and, for the same rows, in data)."""
    mine, theirs = answer(fv, status), answer(ref, status)
    assert shape(mine) == shape(theirs)
    if values:
        assert mine["data"] == theirs["data"]
    return mine["data"]


def test_the_reference_answers_every_benchmarked_operation_as_fvapp_does(app, demo, reference):
    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    fvapp, auth = app.test_client(), bearer(key)
    write = {**auth, "Content-Type": "application/json"}

    fvapp.get("/api/v1/me", headers=auth)  # last_used_at written once; both read it after
    same(fvapp.get("/api/v1/me", headers=auth), reference.get("/api/v1/me", headers=auth))

    made = {}
    for who, client in (("fvapp", fvapp), ("reference", reference)):
        made[who] = client.post("/api/v1/initiatives", headers=write, data=json.dumps(
            {"title": f"  Café for {who}  ", "description": "Nommé ☕"}))
    created = same(made["fvapp"], made["reference"], 201, values=False)
    assert created["title"] == "Café for fvapp"
    theirs = json.loads(made["reference"].get_data())["data"]
    assert theirs["title"] == "Café for reference"

    page = "/api/v1/initiatives?limit=50"
    listed = same(fvapp.get(page, headers=auth), reference.get(page, headers=auth))
    assert [item["id"] for item in listed["items"]] == [theirs["id"], created["id"]]

    one = f"/api/v1/initiatives/{created['id']}"
    same(fvapp.get(one, headers=auth), reference.get(one, headers=auth))

    renamed = same(
        fvapp.patch(one, headers=write, data=json.dumps({"title": "Renamed", "archived": True})),
        reference.patch(f"/api/v1/initiatives/{theirs['id']}", headers=write,
                        data=json.dumps({"title": "Renamed too", "archived": True})),
        values=False)
    assert renamed["archived"] is True
    same(fvapp.get(one, headers=auth), reference.get(one, headers=auth))
    archived = "/api/v1/initiatives?archived=true&limit=50"
    assert len(same(fvapp.get(archived, headers=auth),
                    reference.get(archived, headers=auth))["items"]) == 2

    for client in (fvapp, reference):  # the refusals the key check makes, in the same envelope
        refused = client.get("/api/v1/me", headers=bearer("fvk_live_nope"))
        assert answer(refused, 401)["code"] == "UNAUTHORIZED"
        assert refused.headers["WWW-Authenticate"] == "Bearer"
