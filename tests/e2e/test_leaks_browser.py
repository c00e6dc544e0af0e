"""Key detail and leak reports in Chromium (SPEC §9): a client with its own user agent uses a
key; Ava sees where from and how much in its row and opens its detail (IP, agent, today's
count, the chart); a signed report from the scanner revokes it, the alert shows on Settings →
API Keys until Ava dismisses it. Screenshots of the row, the detail dialog and the alert at desktop and phone size."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect

from fvapp import usage
from fvapp.services import keys

from .axe import audit
from .conftest import DESKTOP, PHONE, SCREENSHOTS, login, screenshot, serve

LEAK_URL = "https://github.com/octo/repo/blob/abc/config.py"
IDENTIFIER = "e2e-k1"
AGENT = "acme-nightly-export/4.2 (build 917; +https://acme.test/bots)"


@pytest.fixture
def scanner_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def live_app(app_factory, scanner_key, tmp_path):
    """The live server's app, with the scanner's public key configured."""
    path = tmp_path / "github-keys.json"
    pem = scanner_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    path.write_text(json.dumps({"public_keys": [
        {"key_identifier": IDENTIFIER, "key": pem, "is_current": True}]}))
    return app_factory(SECRET_SCANNING_KEYS_FILE=str(path))


@pytest.fixture
def live_server(live_app, demo):
    """The conftest's live server, serving live_app."""
    with serve(live_app) as base:
        yield base


def call_api(base_url, token, path="/api/v1/me") -> int:
    request = urllib.request.Request(f"{base_url}{path}", headers={
        "Authorization": f"Bearer {token}", "User-Agent": AGENT})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def post_leak_report(base_url, scanner_key, token):
    body = json.dumps([{"token": token, "type": "forcevue_api_key", "url": LEAK_URL,
                        "source": "content"}]).encode()
    signature = base64.b64encode(scanner_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    request = urllib.request.Request(
        f"{base_url}/api/secret-scanning", data=body, method="POST",
        headers={"Content-Type": "application/json", "Github-Public-Key-Identifier": IDENTIFIER,
                 "Github-Public-Key-Signature": signature})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_owner_sees_detail_then_a_leak_report_revokes_and_alerts(
        app_context, page_factory, live_app, live_server, demo, scanner_key, backend, width):
    ava = demo.user("ava@acme.test")
    created = keys.create_key(demo.acme.id, ava.id, "CI pipeline")
    prefix = created.key.prefix
    # A client with a distinctive user agent: 3 answers, one refusal (404), then a flush (what
    # the server's background thread does once a minute)
    assert [call_api(live_server, created.clear) for _ in range(3)] == [200] * 3
    missing = "/api/v1/initiatives/00000000-0000-4000-8000-000000000000"
    assert call_api(live_server, created.clear, missing) == 404
    usage.flush(live_app)
    page, watch = page_factory(viewport=DESKTOP if width == "desktop" else PHONE)
    shot = f"{width}-{backend}"
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    row = page.get_by_role("row").filter(has_text="CI pipeline")
    expect(row).to_contain_text(prefix)
    expect(row).to_contain_text("Active")
    # One line of Last used; origin and usage are the detail view's.
    expect(row).to_contain_text("just now")
    expect(row).not_to_contain_text("127.0.0.1")
    expect(row.locator("svg")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    expect(page.get_by_role("alert")).to_have_count(0)
    screenshot(page, f"leaks-row-active-{shot}")
    found: list[str] = []
    audit(page, "keys with a used key", found)
    row.screenshot(path=str(SCREENSHOTS / f"leaks-row-only-active-{shot}.png"))  # close up

    # The row's name opens the detail as a dialog; Close gives focus back to the link.
    row.get_by_role("link", name="CI pipeline").click()
    detail = page.get_by_role("dialog", name="CI pipeline")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(prefix)
    expect(detail).to_contain_text("Active")
    expect(detail).to_contain_text(f"by {ava.name}")
    expect(detail.get_by_role("link", name="Revoke…")).to_be_visible()
    expect(detail).to_contain_text("127.0.0.1")
    expect(detail).to_contain_text(AGENT)
    expect(detail.locator("[data-usage-today]")).to_have_text("4")
    chart = detail.get_by_role("figure", name="Requests per day, last 90 days")
    expect(chart.locator("svg rect.bar-ok")).to_have_count(1)
    expect(chart.locator("svg rect.bar-errors")).to_have_count(1)
    # coloured by the stylesheet (no style attribute): a broken app.css leaves SVG's black
    expect(chart.locator("svg rect.bar-ok")).to_have_css("fill", "rgb(79, 70, 229)")
    table = chart.get_by_role("table", name="Requests per day for CI pipeline")
    expect(table.get_by_role("row")).to_have_count(91)  # the header and every day
    expect(table.get_by_role("row").nth(90)).to_contain_text("3")
    assert created.clear not in page.content()
    audit(page, "key detail with usage chart", found)
    assert found == [], "\n".join(found)
    screenshot(page, f"leaks-detail-active-{shot}", full_page=False)
    page.keyboard.press("Escape")
    expect(detail).to_have_count(0)

    # The scanner reports the key public: revoked at once, without anyone at the keyboard.
    [answer] = post_leak_report(live_server, scanner_key, created.clear)
    assert answer["label"] == "true_positive"

    page.reload()
    reason = f"leaked: found public at {LEAK_URL}"
    expect(row).to_contain_text("Revoked")
    expect(row).to_contain_text("by GitHub secret scanning")
    expect(row).not_to_contain_text(reason)  # the reason is in the detail
    expect(page.get_by_role("button", name="Revoke CI pipeline")).to_have_count(0)
    alert = page.get_by_role("alert").filter(has_text="was found public")
    expect(alert).to_contain_text("CI pipeline")
    expect(alert).to_contain_text(prefix)
    expect(alert.get_by_role("link", name=LEAK_URL)).to_have_attribute("href", LEAK_URL)
    screenshot(page, f"leaks-alert-{shot}")
    row.screenshot(path=str(SCREENSHOTS / f"leaks-row-only-revoked-{shot}.png"))

    row.get_by_role("link", name="CI pipeline").click()
    expect(detail).to_contain_text("Revoked")
    expect(detail).to_contain_text(reason)
    expect(detail).to_contain_text("by GitHub secret scanning")
    expect(detail.get_by_role("link", name="Revoke…")).to_have_count(0)
    screenshot(page, f"leaks-detail-revoked-{shot}", full_page=False)
    page.keyboard.press("Escape")
    expect(detail).to_have_count(0)

    alert.get_by_role("button", name="Dismiss the alert about CI pipeline").click()
    expect(page.get_by_role("status")).to_contain_text("Alert dismissed. The key stays revoked.")
    expect(alert).to_have_count(0)
    expect(row).to_contain_text("Revoked")
    page.reload()
    expect(page.get_by_role("alert").filter(has_text="was found public")).to_have_count(0)
    expect(row).to_contain_text("by GitHub secret scanning")
    screenshot(page, f"leaks-after-dismiss-{shot}")
    watch.assert_clean()
