"""One log line per request (SPEC §10, fvapp/request_log.py): time, request id, method, path,
status, duration, the key's display prefix for API calls — never the key, a header, a cookie, a
body or a query string."""

from __future__ import annotations

import io
import logging
import re
import sys
import threading

import pytest

from fvapp import api_app, request_log
from fvapp.config import from_environment
from fvapp.request_log import key_prefix
from fvapp.services import keys
from tests.support.api import bearer, mint_key
from tests.support.browser import Browser

LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) request_id=(?P<request_id>[0-9a-f-]{36})"
    r" method=(?P<method>\S+) path=(?P<path>\S+) status=(?P<status>\d{3})"
    r" duration_ms=(?P<duration>\d+\.\d) key_prefix=(?P<key_prefix>\S+)$")
KEY = re.compile(r"fvk_live_[0-9A-Za-z]{38}")


@pytest.fixture
def logged(capsys, caplog):
    """The request lines written so far (the logger writes to stderr), and everything else any
    logger said, for the "no secret anywhere" checks."""
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    def lines() -> list[dict]:
        captured = capsys.readouterr()
        seen.append(captured.out + captured.err + caplog.text)
        found = [LINE.match(line) for line in captured.err.splitlines() if "request_id=" in line]
        assert all(found), captured.err
        return [match.groupdict() for match in found]

    lines.everything = lambda: "".join(seen)
    return lines


def test_one_line_per_api_request_with_the_key_prefix_never_the_key(app, demo, logged):
    client = app.test_client()
    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    unknown = keys.generate_key()  # well formed, never issued
    logged()

    ok = client.get("/api/v1/me?api_key=" + key, headers=bearer(key))
    refused = client.get("/api/v1/me", headers=bearer(unknown))
    odd = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-key-but-a-secret",
                                            "Cookie": "session=cookie-secret"})
    missing = client.post("/api/v1/initiatives", json={"title": "body-secret"})
    assert [r.status_code for r in (ok, refused, odd, missing)] == [200, 401, 401, 401]

    lines = logged()
    assert len(lines) == 4
    for line, response in zip(lines, (ok, refused, odd, missing), strict=True):
        assert line["request_id"] == response.headers["X-Request-Id"]  # = meta.requestId
        assert line["status"] == str(response.status_code)
        assert float(line["duration"]) >= 0
    assert [(line["method"], line["path"]) for line in lines] == [
        ("GET", "/api/v1/me")] * 3 + [("POST", "/api/v1/initiatives")]
    assert [line["key_prefix"] for line in lines] == [key[:13], unknown[:13], "-", "-"]
    everything = logged.everything()
    for secret in (key, unknown, "not-a-key-but-a-secret", "cookie-secret", "body-secret",
                   "api_key"):
        assert secret not in everything


def test_one_line_per_page_request_and_no_secret_from_the_forms(app, demo, logged):
    person = Browser(app.test_client())
    logged()
    assert person.login("ava@acme.test").status_code == 303  # GET /login, POST /login, GET /
    created = person.post("/settings/api-keys", {"name": "Logged"})
    clear = KEY.search(created.text).group()  # revealed once, in this response only
    assert person.get("/no/such/page").status_code == 404

    lines = logged()
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/login", "200"), ("POST", "/login", "303"), ("GET", "/", "200"),
        ("POST", "/settings/api-keys", "200"), ("GET", "/no/such/page", "404")]
    assert {line["key_prefix"] for line in lines} == {"-"}
    assert len({line["request_id"] for line in lines}) == len(lines)
    everything = logged.everything()
    assert clear not in everything and demo.password not in everything
    assert person.token not in everything  # the CSRF token, a header and a form field
    assert not KEY.search(everything)


def test_a_path_cannot_forge_or_split_a_line(app, logged):
    client = app.test_client()
    logged()
    client.get("/api/v1/me%0Astatus=200 key_prefix=fvk_live_fake")
    client.get("/caf\u00e9 x")
    lines = logged()
    assert len(lines) == 2
    assert lines[0]["path"] == "/api/v1/me%0Astatus=200%20key_prefix=fvk_live_fake"
    assert lines[0]["status"] == "404" and lines[0]["key_prefix"] == "-"
    assert lines[1]["path"] == "/caf%C3%A9%20x"


def test_the_key_prefix_is_taken_only_from_a_key_shaped_bearer_token():
    key = keys.generate_key()
    assert key_prefix(f"Bearer {key}") == key_prefix(f"bearer  {key} ") == key[:13]
    assert key_prefix(f"Basic {key}") == key_prefix(None) == key_prefix("") == "-"
    assert key_prefix(f"Bearer {key}x") == key_prefix("Bearer sk_live_123") == "-"


def test_the_line_goes_through_logging_with_any_handler_and_formatter(app, capsys):
    """An ordinary logger: the default stderr handler takes whatever formatter an operator
    gives it, and a handler of one's own gets the same records (with request_log.Formatter,
    the documented line)."""
    default = [h for h in request_log.log.handlers if isinstance(h, request_log.StderrHandler)]
    assert len(default) == 1  # install()'s
    mine = logging.StreamHandler(io.StringIO())
    mine.setFormatter(request_log.Formatter())
    request_log.log.addHandler(mine)
    default[0].setFormatter(logging.Formatter("custom %(levelname)s %(name)s: %(message)s"))
    try:
        capsys.readouterr()
        response = app.test_client().get("/api/v1/me")
    finally:
        default[0].setFormatter(request_log.Formatter())
        request_log.log.removeHandler(mine)
    rid = response.headers["X-Request-Id"]
    assert capsys.readouterr().err.splitlines() == [
        f"custom INFO fvapp.request: request_id={rid} method=GET path=/api/v1/me status=401 "
        + re.search(r"duration_ms=\S+", mine.stream.getvalue()).group() + " key_prefix=-"]
    line = LINE.match(mine.stream.getvalue().rstrip("\n"))
    assert line and line["request_id"] == rid and line["status"] == "401"


@pytest.mark.parametrize(("now", "stamp"), [(1_764_562_843.1239, "2025-12-01T04:20:43.123Z"),
                                           (1_764_562_844.0, "2025-12-01T04:20:44.000Z")])
def test_the_formatter_writes_utc_to_the_millisecond(now, stamp):
    record = logging.LogRecord(request_log.LOGGER, logging.INFO, __file__, 1,
                               "request_id=%s status=%s", ("abc", "200"), None)
    record.created, record.msecs = now, int((now - int(now)) * 1000) + 0.0
    assert request_log.Formatter().format(record) == f"{stamp} request_id=abc status=200"


def test_the_formatter_keeps_the_stamp_of_each_second_and_writes_tracebacks():
    """The second's stamp is reused only within that second; a record with an exception is
    written as logging.Formatter writes it (the traceback after the line)."""
    formatter = request_log.Formatter()

    def record(now, exc_info=None):
        made = logging.LogRecord(request_log.LOGGER, logging.INFO, __file__, 1, "line %s",
                                 ("x",), exc_info)
        made.created, made.msecs = now, int((now - int(now)) * 1000) + 0.0
        return made

    assert [formatter.format(record(now)) for now in (1_764_562_843.5, 1_764_562_843.9,
                                                      1_764_562_844.25)] == [
        "2025-12-01T04:20:43.500Z line x", "2025-12-01T04:20:43.900Z line x",
        "2025-12-01T04:20:44.250Z line x"]
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record(1_764_562_845.0, sys.exc_info())
    written = formatter.format(failed)
    assert written.startswith("2025-12-01T04:20:45.000Z line x\nTraceback (most recent call last)")
    assert written.endswith("RuntimeError: boom")


# -- keys in clear, anywhere in a log line -------------------------------------------------------


def test_a_key_in_the_path_is_logged_as_its_display_prefix(app, demo, logged):
    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    client = app.test_client()
    logged()
    client.get(f"/api/v1/{key}?api_key={key}")
    client.get(f"/api/v1/initiatives/{key}x", headers=bearer(key))
    client.get("/settings/" + key.replace("_", "%5F"))
    lines = logged()
    assert [line["path"] for line in lines] == [
        f"/api/v1/{key[:13]}…", f"/api/v1/initiatives/{key[:13]}…", f"/settings/{key[:13]}…"]
    assert key not in logged.everything() and key[13:] not in logged.everything()


def test_redact_writes_every_key_shaped_string_as_its_prefix():
    key = keys.generate_key()
    assert request_log.redact(f"GET /a/{key}?k={key} x") == f"GET /a/{key[:13]}…?k={key[:13]}… x"
    assert request_log.redact("fvk%5Flive%5F" + key[9:]) == key[:13] + "…"
    assert request_log.redact("fvk_live_abc and fvk_live_") == "fvk_live_abc and fvk_live_"


def test_the_error_log_writes_keys_as_their_prefix(app_factory, demo, capsys, caplog):
    app = app_factory()
    api = api_app(app)
    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))

    @api.get("/v1/boom/<path:rest>")
    def boom(rest):
        api.logger.warning("about to fail for %s", rest)
        raise RuntimeError(f"failed for {rest}")

    caplog.set_level(logging.INFO)
    capsys.readouterr()
    response = app.test_client().get(f"/api/v1/boom/{key}")
    assert response.status_code == 500 and key not in response.text
    text = caplog.text + capsys.readouterr().err
    assert "RuntimeError: failed for " + key[:13] + "…" in text  # the traceback, redacted
    assert f"about to fail for {key[:13]}…" in text
    assert f"unhandled error on GET /api/v1/boom/{key[:13]}…" in text
    assert key not in text


def test_the_development_servers_access_line_writes_keys_as_their_prefix(app, demo, capfd,
                                                                          caplog):
    """`make run` serves with Werkzeug's development server (flask run → run_simple →
    make_server), whose access line quotes the request line, query string included."""
    import requests
    from werkzeug.serving import make_server

    key = mint_key(demo.app, demo.acme, demo.user("ava@acme.test"))
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="werkzeug")  # other tests quiet it
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert requests.get(f"{base}/api/v1/{key}?api_key={key}", timeout=10,
                            headers=bearer(key)).status_code == 404
        encoded = key.replace("_", "%5F")
        requests.get(f"{base}/api/v1/{encoded}", timeout=10)
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
    access = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert len(access) == 2, access
    assert f"/api/v1/{key[:13]}…?api_key={key[:13]}…" in access[0]
    captured = capfd.readouterr()
    everything = caplog.text + captured.out + captured.err
    assert key not in everything and key[13:] not in everything and encoded not in everything


def test_request_logging_can_be_turned_off(app_factory, logged):
    quiet = app_factory(LOG_REQUESTS=False)
    logged()
    response = quiet.test_client().get("/api/v1/me")
    assert response.status_code == 401 and response.headers["X-Request-Id"]
    assert logged() == []


@pytest.mark.parametrize(("value", "on"), [(None, True), ("1", True), ("0", False), ("off", False),
                                           ("False", False)])
def test_log_requests_is_read_from_the_environment(value, on):
    env = {"FVAPP_ENV": "testing"} | ({"LOG_REQUESTS": value} if value is not None else {})
    assert from_environment(env)["LOG_REQUESTS"] is on
