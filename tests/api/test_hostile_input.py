"""Hostile input never gets a 5xx: arbitrary bytes, deep nesting, huge numbers,
odd unicode and odd headers thrown at every documented operation always answer a 4xx (or 2xx)
in the SPEC §5 envelope."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.api import Api, assert_envelope, mint_key


@pytest.fixture
def api(app, demo):
    return Api(app.test_client(), mint_key(demo.app, demo.acme, demo.user("ava@acme.test")))


@pytest.fixture
def initiative_id(api):
    return assert_envelope(api.post("/initiatives", json={"title": "Fuzz target"}), 201)["data"]["id"]


def operations(initiative_id: str) -> list[tuple[str, str]]:
    """Every documented operation (the test below checks the list against openapi.json)."""
    return [("GET", "/me"), ("GET", "/initiatives"), ("POST", "/initiatives"),
            ("GET", f"/initiatives/{initiative_id}"), ("PATCH", f"/initiatives/{initiative_id}")]


def test_the_list_covers_every_documented_operation(api, initiative_id):
    document = api.client.get("/api/v1/openapi.json").get_json()
    documented = {(method.upper(), path.replace("{initiative_id}", initiative_id))
                  for path, ops in document["paths"].items() for method in ops}
    assert documented == set(operations(initiative_id))


@pytest.mark.parametrize("body", [b"[" * 200_000, b"{\"a\":" * 100_000, b"[" * 5_000 + b"]" * 5_000])
@pytest.mark.parametrize("method,path", [("POST", "/initiatives"), ("PATCH", "/initiatives/{id}")])
def test_deeply_nested_json_is_a_400_not_a_500(api, initiative_id, body, method, path):
    response = api.open(path.format(id=initiative_id), method, data=body,
                        headers={"Content-Type": "application/json"})
    assert_envelope(response, 400, "VALIDATION_ERROR")


def _nested(depth: int, leaf) -> object:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


json_leaves = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10 ** 400), max_value=10 ** 400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=50),
)
json_values = st.recursive(json_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4),
), max_leaves=20)

bodies = st.one_of(
    st.binary(max_size=300),                                                   # arbitrary bytes
    json_values.map(lambda v: json.dumps(v).encode()),                          # any JSON at all
    st.fixed_dictionaries({}, optional={                                        # plausible objects
        "title": json_values, "description": json_values, "status": json_values,
        "archived": json_values, "impact": json_values,
    }).map(lambda v: json.dumps(v).encode()),
    st.tuples(st.integers(1, 50_000), json_leaves).map(                         # deep nesting
        lambda t: b"[" * t[0] + json.dumps(t[1]).encode() + b"]" * t[0]),
    st.integers(1, 50_000).map(lambda n: b"{\"title\":" * n),                   # unclosed
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40).map(          # odd unicode
        lambda t: json.dumps({"title": t}, ensure_ascii=False).encode()),
    st.sampled_from([b"1e999999", b"-" + b"9" * 5000, b"NaN", b"\xef\xbb\xbf{}", b"\"\\ud800\"",
                     b"{\"title\":\"\\u0000\"}", b"{\"title\":\"\\udfff\"}"]),
)

header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=40)
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.one_of(header_text, st.sampled_from([
        "application/json", "application/json; charset=latin-1", "application/json; charset=",
        "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
        "application/json; charset=utf-8; charset=utf-16",
    ])),
    "Accept": header_text, "If-Match": header_text, "X-Request-Id": header_text,
    "Content-Encoding": st.sampled_from(["gzip", "br", "identity", "x"]),
    "Idempotency-Key": header_text,
})
queries = st.dictionaries(st.sampled_from(["limit", "cursor", "status", "archived", "q", "x"]),
                          header_text, max_size=3)


@settings(max_examples=250, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_hostile_input_never_answers_a_5xx(api, initiative_id, data):
    method, path = data.draw(st.sampled_from(operations(initiative_id)), label="operation")
    sent_headers = data.draw(headers, label="headers")
    query = data.draw(queries, label="query")
    body = data.draw(bodies, label="body") if method in ("POST", "PATCH") or data.draw(
        st.booleans(), label="body on a GET") else None
    response = api.open(path, method, headers=sent_headers, query_string=query, data=body)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert_envelope(response, response.status_code, response.get_json()["code"])
    else:
        assert_envelope(response, response.status_code)


def test_an_unknown_initiative_id_of_any_shape_is_a_4xx(api):
    for odd in ["%00", "..", "x" * 5000, str(uuid.uuid4()).upper(), "\u202e", "1e999"]:
        response = api.get("/initiatives/" + odd)
        assert 400 <= response.status_code < 500
