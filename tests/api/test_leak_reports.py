"""Leak reports of SPEC §9: GitHub's secret-scanning partner endpoint, signed with ECDSA P-256."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
import sqlalchemy as sa

from fvapp.extensions import db
from fvapp.models import ApiKey, AuditEvent, KeyLeakAlert
from fvapp.services import keys
from tests.support.leaks import URL, Signer, post, report, trusted_signer


@pytest.fixture
def signer(app, tmp_path):
    return trusted_signer(app, tmp_path)


@pytest.fixture
def live_key(app, demo):
    with app.app_context():
        created = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "CI pipeline")
        db.session.refresh(created.key)  # loaded while its session lasts
    return created


def state(app):
    with app.app_context():
        return (
            db.session.scalars(sa.select(ApiKey.revoked_reason).order_by(ApiKey.id)).all(),
            db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)),
            db.session.scalar(sa.select(sa.func.count()).select_from(KeyLeakAlert)),
        )


def test_signed_report_revokes_at_once_audits_alerts_and_answers_feedback(app, signer, live_key):
    response = post(app, report(live_key.clear), signer)
    assert response.status_code == 200, response.text
    assert response.json == [{"token_hash": hashlib.sha256(live_key.clear.encode()).hexdigest(),
                              "token_type": "forcevue_api_key", "label": "true_positive"}]
    with app.app_context():
        key = db.session.get(ApiKey, live_key.key.id)
        assert key.revoked_at is not None and key.revoked_by_id is None
        assert key.revoked_reason == f"leaked: found public at {URL}"
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "api_key.leak_revoked"))
        assert event.target_id == key.id and URL in event.detail and live_key.clear not in event.detail
        alert = db.session.scalar(sa.select(KeyLeakAlert))
        assert (alert.api_key_id, alert.url, alert.dismissed_at) == (key.id, URL, None)
    # the revoked key no longer opens the API
    api = app.test_client().get("/api/v1/initiatives",
                                headers={"Authorization": f"Bearer {live_key.clear}"})
    assert api.status_code == 401
    # idempotent: the same report again is still a true positive and changes nothing
    before = state(app)
    again = post(app, report(live_key.clear), signer)
    assert again.status_code == 200 and again.json[0]["label"] == "true_positive"
    assert state(app) == before


def test_other_formats_wrong_checksum_and_unknown_keys_are_false_positives(app, signer, live_key):
    clear = live_key.clear
    wrong_checksum = clear[:-1] + ("A" if clear[-1] != "A" else "B")
    unknown = keys.generate_key()
    body = report("ghp_notours") + report(wrong_checksum) + report(unknown) + [
        {"token": "x", "url": 5}]
    before = state(app)
    response = post(app, body, signer)
    assert response.status_code == 200
    assert [item["label"] for item in response.json] == ["false_positive"] * 4
    assert response.json[3]["token_type"] == ""
    assert state(app) == before


@pytest.mark.parametrize("case", ["missing", "unknown_id", "bad_signature", "not_base64",
                                  "other_key", "tampered_body"])
def test_bad_or_missing_signature_is_401_and_nothing_done(app, signer, live_key, case):
    body = json.dumps(report(live_key.clear)).encode()
    kwargs = {
        "missing": {},
        "unknown_id": {"signer": signer, "identifier": "nope"},
        "bad_signature": {"signer": signer, "signature": base64.b64encode(b"0" * 70).decode()},
        "not_base64": {"signer": signer, "signature": "%%%"},
        "other_key": {"signer": signer, "signature": Signer().sign(body)},
        "tampered_body": {"signer": signer, "signature": signer.sign(body + b" ")},
    }[case]
    before = state(app)
    response = post(app, body, **kwargs)
    assert response.status_code == 401
    assert response.json["success"] is False and response.json["code"] == "UNAUTHORIZED"
    assert state(app) == before


@pytest.mark.parametrize("raw", [b"{not json", b'{"token": "x"}', b"[1, 2]", b'[{"token": 5}]',
                                 b"\xff\xfe"])
def test_malformed_report_is_400(app, signer, live_key, raw):
    before = state(app)
    response = post(app, raw, signer)
    assert response.status_code == 400, response.text
    assert response.json["code"] == "VALIDATION_ERROR"
    assert state(app) == before


def test_unconfigured_endpoint_is_404(app, live_key):
    app.config["SECRET_SCANNING_KEYS_FILE"] = None
    assert post(app, report(live_key.clear)).status_code == 404


def test_batch_of_a_thousand_tokens(app, signer, live_key):
    tokens = [keys.generate_key() for _ in range(999)] + [live_key.clear]
    body = [{"token": t, "type": "forcevue_api_key", "url": URL, "source": "content"} for t in tokens]
    response = post(app, body, signer)
    assert response.status_code == 200
    labels = [item["label"] for item in response.json]
    assert len(labels) == 1000 and labels.count("true_positive") == 1 and labels[-1] == "true_positive"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(KeyLeakAlert)) == 1


def test_not_the_bearer_api_no_key_auth_no_csrf_no_cookie(app, signer, live_key):
    """A signed report carries no Bearer key and no CSRF token, and gets no session cookie."""
    response = post(app, report(live_key.clear), signer)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


# -- the verifying keys file -------------------------------------------------------------------


def write_keys(path, *entries):
    path.write_text(json.dumps({"public_keys": list(entries)}))


def entry(signer):
    return {"key_identifier": signer.identifier, "key": signer.pem(), "is_current": True}


def skipped(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "fvapp.leaks.reports" and "skipped" in r.getMessage()]


def test_a_bad_entry_is_skipped_with_one_log_line_and_the_others_verify(app, live_key, tmp_path,
                                                                        caplog):
    good, path = Signer("good"), tmp_path / "keys.json"
    write_keys(path, {"key_identifier": "broken", "key": "-----BEGIN PUBLIC KEY-----\nnope"},
               {"key": "no identifier"}, "not an object", entry(good))
    app.config["SECRET_SCANNING_KEYS_FILE"] = str(path)
    for _ in range(3):  # read once: the skipped entries are logged once, not per report
        assert post(app, report(keys.generate_key()), good).status_code == 200
    lines = skipped(caplog)
    assert len(lines) == 3 and all(str(path) in line for line in lines), lines
    assert lines[0].startswith(f"secret scanning: entry 0 of {path} skipped (")
    assert post(app, report(live_key.clear), good).json[0]["label"] == "true_positive"


def test_the_keys_file_is_read_again_when_it_changes(app, live_key, tmp_path, caplog):
    old, new, path = Signer("old"), Signer("new"), tmp_path / "keys.json"
    write_keys(path, entry(old), {"key_identifier": "bad", "key": "x"})
    app.config["SECRET_SCANNING_KEYS_FILE"] = str(path)
    assert post(app, report(keys.generate_key()), old).status_code == 200
    assert post(app, report(keys.generate_key()), old).status_code == 200
    assert len(skipped(caplog)) == 1  # two reports, one read
    write_keys(path, entry(new))  # rotated (another size)
    assert post(app, report(keys.generate_key()), new).status_code == 200
    assert post(app, report(keys.generate_key()), old).status_code == 401
    replacement = tmp_path / "replacement.json"  # same size, another inode (a rename over it)
    write_keys(replacement, entry(Signer("new")) | {"key": old.pem()})
    replacement.replace(path)
    assert post(app, report(keys.generate_key()), old, identifier="new").status_code == 200


@pytest.mark.parametrize("content", [None, "{not json", '{"keys": []}',
                                     '{"public_keys": [{"key_identifier": "x", "key": "y"}]}'],
                         ids=["missing", "not-json", "not-the-format", "no-usable-key"])
def test_503_only_when_the_file_cannot_be_read_or_no_key_is_usable(app, live_key, tmp_path,
                                                                   caplog, content):
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content)
    app.config["SECRET_SCANNING_KEYS_FILE"] = str(path)
    before = state(app)
    for _ in range(2):
        response = post(app, report(live_key.clear), Signer("x"))
        assert response.status_code == 503 and response.json["code"] == "SERVICE_UNAVAILABLE"
    assert state(app) == before
    errors = [r for r in caplog.records if r.name == "fvapp.leaks.reports"
              and r.levelname == "ERROR"]
    assert len(errors) == 1, errors  # once per change of the file, not per report
    assert str(path) in errors[0].getMessage()
