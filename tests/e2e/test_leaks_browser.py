"""Key detail and leak reports in Chromium (SPEC §9): Ava opens a key's detail from its row, a
signed report from the scanner revokes it, the alert shows on Settings → API Keys until Ava
dismisses it. Screenshots of the row, the detail dialog and the alert at desktop and phone size."""

from __future__ import annotations

import base64
import json
import logging
import threading
import urllib.request

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import expect
from werkzeug.serving import make_server

from fvapp.services import keys

from .conftest import DESKTOP, PHONE, login, screenshot

LEAK_URL = "https://github.com/octo/repo/blob/abc/config.py"
IDENTIFIER = "e2e-k1"


@pytest.fixture
def scanner_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def live_server(app_factory, demo, scanner_key, tmp_path):
    """The conftest's live server, with the scanner's public key configured."""
    path = tmp_path / "github-keys.json"
    pem = scanner_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    path.write_text(json.dumps({"public_keys": [
        {"key_identifier": IDENTIFIER, "key": pem, "is_current": True}]}))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app_factory(SECRET_SCANNING_KEYS_FILE=str(path)),
                         threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


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
        app_context, page_factory, live_server, demo, scanner_key, backend, width):
    ava = demo.user("ava@acme.test")
    created = keys.create_key(demo.acme.id, ava.id, "CI pipeline")
    prefix = created.key.prefix
    page, watch = page_factory(viewport=DESKTOP if width == "desktop" else PHONE)
    shot = f"{width}-{backend}"
    login(page, "ava@acme.test")
    page.goto("/settings/api-keys")
    row = page.get_by_role("row").filter(has_text="CI pipeline")
    expect(row).to_contain_text(prefix)
    expect(row).to_contain_text("Active")
    expect(page.get_by_role("alert")).to_have_count(0)
    screenshot(page, f"leaks-row-active-{shot}")

    # The row's name opens the detail as a dialog; Close gives focus back to the link.
    row.get_by_role("link", name="CI pipeline").click()
    detail = page.get_by_role("dialog", name="CI pipeline")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(prefix)
    expect(detail).to_contain_text("Active")
    expect(detail).to_contain_text(f"by {ava.name}")
    expect(detail.get_by_role("link", name="Revoke…")).to_be_visible()
    assert created.clear not in page.content()
    screenshot(page, f"leaks-detail-active-{shot}", full_page=False)
    page.keyboard.press("Escape")
    expect(detail).to_have_count(0)

    # The scanner reports the key public: revoked at once, without anyone at the keyboard.
    [answer] = post_leak_report(live_server, scanner_key, created.clear)
    assert answer["label"] == "true_positive"

    page.reload()
    reason = f"leaked: found public at {LEAK_URL}"
    expect(row).to_contain_text("Revoked")
    expect(row).to_contain_text("by ForceVue")
    expect(row).to_contain_text(f"Reason: {reason}")
    expect(page.get_by_role("button", name="Revoke CI pipeline")).to_have_count(0)
    alert = page.get_by_role("alert").filter(has_text="was found public")
    expect(alert).to_contain_text("CI pipeline")
    expect(alert).to_contain_text(prefix)
    expect(alert.get_by_role("link", name=LEAK_URL)).to_have_attribute("href", LEAK_URL)
    screenshot(page, f"leaks-alert-{shot}")

    row.get_by_role("link", name="CI pipeline").click()
    expect(detail).to_contain_text("Revoked")
    expect(detail).to_contain_text(reason)
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
    expect(row).to_contain_text(f"Reason: {reason}")
    screenshot(page, f"leaks-after-dismiss-{shot}")
    watch.assert_clean()
