"""Bodies that abuse their endpoint (SPEC §11): over the size limit → 413 whether sent with
Content-Length or chunked (REST, MCP, leak reports, pages), never silently cut; nested too deep
for the parser → 400 on every endpoint, signed or not, never a 500.

Chunked here is what a WSGI server hands the app for `Transfer-Encoding: chunked`: that header
(Werkzeug then believes no length) and `wsgi.input_terminated` (gunicorn and Werkzeug's server
both set it: the stream ends where the body does).
The same over real HTTP through gunicorn: tests/ops/test_body_limits_across_workers.py."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from fvapp.models import Initiative
from tests.support.api import assert_envelope, bearer, mint_key
from tests.support.bodies import INITIALIZE, MIB, padded, signed
from tests.support.leaks import report, trusted_signer

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
def send(client, path, body: bytes, chunked: bool, headers=None):
    """POST `body` with Content-Length, or chunked (no length, the server terminates the stream)."""
    if not chunked:
        return client.post(path, data=body, headers=headers)
    return client.post(path, input_stream=io.BytesIO(body),
                       headers={**(headers or {}), "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})


@pytest.fixture
def key(app, demo):
    return mint_key(app, demo.acme, demo.user("ava@acme.test"))


@pytest.fixture
def keys_file(app, tmp_path):
    return trusted_signer(app, tmp_path)


def initiatives(demo) -> int:
    return demo.scalar(select(func.count()).select_from(Initiative))


# -- 413, however the body is sent -------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_rest_body_over_1_mib_is_413_and_nothing_created(app, demo, key, chunked):
    body = padded({"title": "Cut"}, MIB + 10)
    response = send(app.test_client(), "/api/v1/initiatives", body, chunked,
                    {**bearer(key), "Content-Type": "application/json"})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert initiatives(demo) == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_rest_body_of_exactly_1_mib_is_served(app, demo, key, chunked):
    body = padded({"title": "Whole"}, MIB)
    response = send(app.test_client(), "/api/v1/initiatives", body, chunked,
                    {**bearer(key), "Content-Type": "application/json"})
    assert_envelope(response, 201)
    assert initiatives(demo) == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_mcp_body_over_1_mib_is_413(app, key, chunked):
    body = padded(INITIALIZE, MIB + 10)
    response = send(app.test_client(), "/api/mcp", body, chunked, {**bearer(key), **MCP_HEADERS})
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    whole = send(app.test_client(), "/api/mcp", padded(INITIALIZE, MIB), chunked,
                 {**bearer(key), **MCP_HEADERS})
    assert whole.status_code == 200 and whole.json["result"]["serverInfo"]["name"] == "fvapp"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_page_form_over_1_mib_is_the_413_page(app, chunked):
    body = b"email=ava%40acme.test&password=" + b"x" * (MIB + 10)
    response = send(app.test_client(), "/login", body, chunked,
                    {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert response.mimetype == "text/html" and "That upload is too large." in response.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_leak_reports_have_their_own_larger_limit(app, demo, keys_file, chunked):
    """A batch over the API's 1 MiB is read whole (GitHub sends large batches); over
    SECRET_SCANNING_MAX_BYTES it is 413, even signed, even with garbage after the limit."""
    live = mint_key(app, demo.acme, demo.user("ava@acme.test"))
    large = padded(report(live), 3 * MIB)
    response = send(app.test_client(), "/api/secret-scanning", large, chunked,
                    signed(keys_file, large))
    assert response.status_code == 200, response.text
    assert response.json[0]["label"] == "true_positive"

    app.config["SECRET_SCANNING_MAX_BYTES"] = 64 * 1024
    over = padded(report(live), 64 * 1024 + 1)
    response = send(app.test_client(), "/api/secret-scanning", over, chunked,
                    signed(keys_file, over))
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    exact = padded(report(live), 64 * 1024)
    assert send(app.test_client(), "/api/secret-scanning", exact, chunked,
                signed(keys_file, exact)).status_code == 200


def test_leak_report_limit_setting():
    from fvapp.config import ConfigError, from_environment

    assert from_environment({"FVAPP_ENV": "testing"})["SECRET_SCANNING_MAX_BYTES"] == 16 * MIB
    assert from_environment({"FVAPP_ENV": "testing", "SECRET_SCANNING_MAX_BYTES": "1000"})[
        "SECRET_SCANNING_MAX_BYTES"] == 1000
    with pytest.raises(ConfigError, match="SECRET_SCANNING_MAX_BYTES"):
        from_environment({"FVAPP_ENV": "testing", "SECRET_SCANNING_MAX_BYTES": "0"})


# -- nested too deep: 400, never 500 -----------------------------------------------------------

DEEP = 50_000


def nested(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def test_a_signed_leak_report_nested_too_deep_is_400(app, keys_file):
    body = nested()
    response = app.test_client().post("/api/secret-scanning", data=body,
                                      headers=signed(keys_file, body))
    assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "nested too deeply" in response.json["error"]
    unsigned = app.test_client().post("/api/secret-scanning", data=body,
                                      headers={"Content-Type": "application/json"})
    assert_envelope(unsigned, 401, "UNAUTHORIZED")


@pytest.mark.parametrize("path, method", [("/api/v1/initiatives", "POST"),
                                          ("/api/v1/initiatives/{id}", "PATCH")])
def test_rest_bodies_nested_too_deep_are_400(app, key, path, method):
    client = app.test_client()
    made = client.post("/api/v1/initiatives", json={"title": "Deep"}, headers=bearer(key))
    target = path.format(id=made.json["data"]["id"])
    for body in (nested(), b'{"title": ' + nested() + b"}",
                 b'{"title": "x", "description": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}"):
        response = client.open(target, method=method, data=body,
                               headers={**bearer(key), "Content-Type": "application/json"})
        assert_envelope(response, 400, "VALIDATION_ERROR")


def test_mcp_bodies_nested_too_deep_are_a_json_rpc_parse_error(app, key):
    client = app.test_client()
    call = (b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", '
            b'"arguments": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}}")
    for body in (nested(), call):
        response = client.post("/api/mcp", data=body, headers={**bearer(key), **MCP_HEADERS})
        assert response.status_code == 400, response.text
        assert response.json["error"]["code"] == -32700  # JSON-RPC's parse error
