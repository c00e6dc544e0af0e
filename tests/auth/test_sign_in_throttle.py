"""Sign-in throttling without a malicious lockout (SPEC §7): OWASP device
cookies, Retry-After on every login 429, and a budget counted before bcrypt so a concurrent burst
of wrong passwords cannot overshoot it."""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid

import pytest
import requests
from werkzeug.serving import make_server

from fvapp.cli import DEMO_PASSWORD
from tests.support.browser import Browser

REDIS_URL = os.environ.get("TEST_REDIS_URL")
WRONG = "wrong-password-here"


def _device_cookie(client):
    return client.get_cookie("login_device")


def test_a_known_browser_still_signs_in_while_an_attacker_is_throttled(app_factory, demo):
    app = app_factory(LOGIN_LIMIT_PER_EMAIL="3 per minute", LOGIN_LIMIT_PER_DEVICE="2 per minute")
    ava = Browser(app.test_client())
    assert ava.login("ava@acme.test").status_code == 303
    assert _device_cookie(ava.client) is not None
    ava.post("/logout")

    attacker = Browser(app.test_client())
    for _ in range(3):
        assert attacker.login("ava@acme.test", WRONG).status_code == 422
    blocked = attacker.login("ava@acme.test", DEMO_PASSWORD)  # even the right password
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60 * (1 + 1 / 3)  # T·(1 + 1/L)
    assert "Too many attempts" in blocked.text

    # Ava's browser has its own budget for her email: she signs in.
    assert ava.login("ava@acme.test").status_code == 303
    ava.post("/logout")
    # Her device's budget is spent by failures from that device, not by the attacker's.
    for _ in range(2):
        assert ava.login("ava@acme.test", WRONG).status_code == 422
    device_blocked = ava.login("ava@acme.test")
    assert device_blocked.status_code == 429 and "Retry-After" in device_blocked.headers
    # The attacker, still without a cookie, is still throttled; another email is not.
    assert attacker.login("ava@acme.test").status_code == 429
    assert attacker.login("adam@acme.test").status_code == 303


def test_a_forged_or_foreign_device_cookie_does_not_lift_the_email_limit(app_factory, demo):
    app = app_factory(LOGIN_LIMIT_PER_EMAIL="2 per minute")
    adam = Browser(app.test_client())
    assert adam.login("adam@acme.test").status_code == 303  # a device cookie for Adam only
    adam.post("/logout")
    genuine = _device_cookie(adam.client).value
    for _ in range(2):
        assert adam.login("ava@acme.test", WRONG).status_code == 422
    assert adam.login("ava@acme.test").status_code == 429  # Adam's cookie says nothing of Ava

    forger = Browser(app.test_client())
    for forged in (genuine[:-2] + "xx", "e30.bad.sig", ""):
        forger.client.set_cookie("login_device", forged)
        assert forger.login("ava@acme.test").status_code == 429


def test_the_device_cookie_is_signed_httponly_and_secure_in_production(app_factory, demo):
    app = app_factory(ENV_MODE="production", BCRYPT_ROUNDS=12)
    browser = Browser(app.test_client())
    response = browser.login("ava@acme.test")
    assert response.status_code == 303
    cookie = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("__Host-login_device=")]
    assert len(cookie) == 1
    attributes = [part.strip().lower() for part in cookie[0].split(";")]
    assert {"secure", "httponly", "path=/"} <= set(attributes)
    assert not any(a.startswith("domain=") for a in attributes)
    assert "ava@acme.test" not in cookie[0]  # signed, and the email is not readable in clear


def test_every_login_429_has_retry_after_per_ip_too(app_factory, demo):
    app = app_factory(LOGIN_LIMIT_PER_IP="2 per minute")
    person = Browser(app.test_client())
    for email in ("a@x.test", "b@x.test"):
        assert person.login(email, WRONG).status_code == 422
    blocked = person.login("c@x.test", WRONG)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60 * (1 + 1 / 2)  # T·(1 + 1/L)


@pytest.fixture
def served(app_factory):
    servers = []
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def serve(**config):
        app = app_factory(**config)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=5)


TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_concurrent_burst_of_wrong_passwords_cannot_overshoot_the_budget(served, demo, store):
    if store == "redis" and not REDIS_URL:
        pytest.skip("needs TEST_REDIS_URL (CI sets it)")
    config = {"LOGIN_LIMIT_PER_EMAIL": "5 per minute"}
    if store == "redis":
        config.update(RATELIMIT_STORAGE_URI=REDIS_URL,
                      RATELIMIT_KEY_PREFIX=f"test-burst-{uuid.uuid4().hex}")
    base = served(**config)
    burst = 24
    sessions, tokens = [], []
    for _ in range(burst):
        client = requests.Session()
        tokens.append(TOKEN.search(client.get(base + "/login", timeout=10).text).group(1))
        sessions.append(client)
    start = threading.Barrier(burst)
    statuses: list[int] = []

    def attempt(n):
        start.wait()
        response = sessions[n].post(base + "/login", timeout=30, allow_redirects=False, data={
            "email": "ava@acme.test", "password": WRONG, "csrf_token": tokens[n]})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(burst)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    print(f"\nburst of {burst} wrong passwords ({store}):",
          {code: statuses.count(code) for code in sorted(set(statuses))})
    assert sorted(statuses) == [422] * 5 + [429] * (burst - 5)  # exactly 5 bcrypt checks


def test_the_device_cookie_does_not_name_the_email(app_factory, demo):
    import base64

    browser = Browser(app_factory().test_client())
    assert browser.login("ava@acme.test").status_code == 303
    payload = _device_cookie(browser.client).value.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b"ava" not in decoded and b"acme" not in decoded


def test_an_enormous_email_is_throttled_like_any_other(app_factory, demo):
    person = Browser(app_factory(LOGIN_LIMIT_PER_EMAIL="1 per minute").test_client())
    huge = "a" * 200_000 + "@x.test"
    assert person.login(huge, WRONG).status_code == 422
    assert person.login(huge, WRONG).status_code == 429


@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=pytest.mark.skipif(
    not REDIS_URL, reason="needs TEST_REDIS_URL (CI sets it)"))])
def test_successful_sign_ins_give_their_attempt_back(app_factory, demo, store):
    config = {"LOGIN_LIMIT_PER_EMAIL": "2 per minute", "LOGIN_LIMIT_PER_IP": "3 per minute"}
    if store == "redis":
        config.update(RATELIMIT_STORAGE_URI=REDIS_URL,
                      RATELIMIT_KEY_PREFIX=f"test-refund-{uuid.uuid4().hex}")
    app = app_factory(**config)
    for _ in range(4):  # each counted before the password check, refunded after it
        person = Browser(app.test_client())
        assert person.login("ava@acme.test").status_code == 303
    attacker = Browser(app.test_client())
    for _ in range(2):
        assert attacker.login("ava@acme.test", WRONG).status_code == 422
    assert attacker.login("ava@acme.test", WRONG).status_code == 429
