"""Login and logout: SPEC §7."""

import re
import time

import bcrypt
import pytest

from fvapp.cli import DEMO_PASSWORD
from tests.support.browser import Browser

CSRF = re.compile(r'value="[^"]+"')


def _strip_tokens(html: str) -> str:
    return re.sub(r'(csrf_token" type="hidden" value=|"X-CSRFToken": )"[^"]+"', "TOKEN", html)


def test_login_success_lands_on_dashboard(browser, demo):
    response = browser.login("ava@acme.test")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    page = browser.get("/")
    assert page.status_code == 200
    assert "Acme Analytics" in page.text


def test_email_is_case_insensitive_at_login(browser, demo):
    assert browser.login("  AVA@Acme.TEST ").status_code == 303


def test_wrong_password_and_unknown_email_answer_identically(browser_factory, demo, monkeypatch):
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))

    first, second = browser_factory(), browser_factory()
    wrong = first.login("ava@acme.test", "wrong-password-here")
    assert len(calls) == 1
    unknown = second.login("nobody@acme.test", "wrong-password-here")
    assert len(calls) == 2
    assert wrong.status_code == unknown.status_code == 422
    assert "do not match an account" in wrong.text
    assert _strip_tokens(wrong.text) == _strip_tokens(unknown.text.replace("nobody", "ava"))


def test_password_over_72_bytes_is_refused_clearly_never_a_500(browser, demo, monkeypatch):
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    response = browser.login("ava@acme.test", "é" * 37)  # 74 bytes, 37 characters
    assert response.status_code == 422
    assert "at most 72 bytes" in response.text
    assert len(calls) == 1
    # 72 bytes exactly is a normal (wrong) password, not a length error
    response = browser.login("ava@acme.test", "a" * 72)
    assert response.status_code == 422
    assert "at most 72 bytes" not in response.text


def test_login_without_csrf_token_is_refused(browser, demo):
    response = browser.client.post(
        "/login", data={"email": "ava@acme.test", "password": demo.password}
    )
    assert response.status_code == 400
    assert "security token" in response.text
    assert browser.get("/").status_code == 302


def test_login_clears_the_previous_session(browser, demo):
    with browser.client.session_transaction() as session:
        session["planted"] = "by an attacker"
    browser.login("ava@acme.test")
    with browser.client.session_transaction() as session:
        assert "planted" not in session


def test_next_parameter_only_goes_to_this_site(browser, demo):
    browser.refresh_token("/login")
    for target, expected in (("/settings/members", "/settings/members"),
                             ("https://evil.test/", "/"), ("//evil.test", "/")):
        browser.client.get("/login")
        response = browser.client.post(
            f"/login?next={target}",
            data={"email": "ava@acme.test", "password": demo.password, "csrf_token": browser.token},
        )
        assert response.headers["Location"] == expected
        browser.refresh_token("/")
        browser.post("/logout")
        browser.refresh_token("/login")


def test_throttling_counts_failed_attempts_per_email(app_factory, demo):
    app = app_factory(LOGIN_LIMIT_PER_EMAIL="3 per minute")
    person = Browser(app.test_client())
    for _ in range(3):
        assert person.login("ava@acme.test", "wrong-password-here").status_code == 422
    blocked = person.login("ava@acme.test", demo.password)
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.text
    # another email from the same IP is not blocked by the per-email limit
    assert person.login("adam@acme.test", demo.password).status_code == 303


def test_throttling_per_ip_and_success_is_not_counted(app_factory, demo):
    app = app_factory(LOGIN_LIMIT_PER_IP="3 per minute")
    person = Browser(app.test_client())
    for _ in range(5):  # successes do not count
        assert person.login("ava@acme.test").status_code == 303
        person.post("/logout")
    for email in ("a@x.test", "b@x.test", "c@x.test"):
        assert person.login(email, "wrong-password-here").status_code == 422
    assert person.login("ava@acme.test").status_code == 429


def test_logout_ends_the_session_and_an_old_cookie_no_longer_works(app, browser, demo):
    browser.login("ava@acme.test")
    stolen = browser.client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    response = browser.post("/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert browser.get("/").status_code == 302

    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], stolen)
    response = replay.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_logout_requires_csrf(browser, demo):
    browser.login("ava@acme.test")
    assert browser.post("/logout", csrf=False).status_code == 400
    assert browser.get("/").status_code == 200


@pytest.mark.parametrize("path", ["/", "/settings/general", "/settings/members"])
def test_pages_need_a_signed_in_user(browser, demo, path):
    response = browser.get(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_security_headers(app, browser, demo):
    response = browser.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    browser.login("ava@acme.test")
    cookie = browser.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie.http_only
    assert cookie.same_site == "Lax"


def test_the_session_cookie_is_set_as_a_host_cookie_in_production(app_factory, demo):
    production = app_factory(ENV_MODE="production", BCRYPT_ROUNDS=12)
    browser = Browser(production.test_client())
    response = browser.client.post("/login", data={
        "email": "ava@acme.test", "password": DEMO_PASSWORD,
        "csrf_token": browser.refresh_token()})
    assert response.status_code == 303
    set_cookie = [v for v in response.headers.getlist("Set-Cookie") if v.startswith("__Host-session=")]
    assert len(set_cookie) == 1, response.headers.getlist("Set-Cookie")
    attributes = [part.strip().lower() for part in set_cookie[0].split(";")]
    assert "secure" in attributes and "path=/" in attributes and "httponly" in attributes
    assert not any(part.startswith("domain=") for part in attributes)
    assert browser.client.get("/", base_url="https://localhost").status_code == 200


@pytest.mark.parametrize("idle,age,alive", [
    (60, 3600, True),                      # used a minute ago, signed in an hour ago
    (12 * 3600 + 5, 13 * 3600, False),     # idle for more than 12 h
    (30, 14 * 24 * 3600 + 5, False),       # busy, but signed in more than 14 days ago
])
def test_sessions_end_after_idle_timeout_and_absolute_lifetime(app, browser, demo, idle, age, alive):
    browser.login("ava@acme.test")
    assert browser.get("/").status_code == 200
    now = int(time.time())
    with browser.client.session_transaction() as session:
        session["_seen"], session["_born"] = now - idle, now - age
    response = browser.client.get("/")
    if alive:
        assert response.status_code == 200
        with browser.client.session_transaction() as session:
            assert session["_seen"] >= now  # refreshed: idle time counts from this request
            assert session["_born"] == now - age  # never extended
    else:
        assert response.status_code == 302 and "/login" in response.headers["Location"]
        with browser.client.session_transaction() as session:  # a new, anonymous session
            assert "_user_id" not in session and session.get("_born", now) >= now
        assert browser.client.get("/").status_code == 302  # and it stays signed out


def test_session_lifetimes_are_configurable(app_factory, demo):
    short = app_factory(SESSION_IDLE_TIMEOUT=100)
    browser = Browser(short.test_client())
    browser.login("ava@acme.test")
    with browser.client.session_transaction() as session:
        session["_seen"] = int(time.time()) - 101
    assert browser.client.get("/").status_code == 302
