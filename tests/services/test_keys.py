"""The keys service without HTTP: format, storage, name rules, the gate, the cap (also under a
20-way race), revocation, and audit events that commit with the change or not at all."""

from __future__ import annotations

import hashlib
import re
import string
import threading
import zlib
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from fvapp.extensions import db
from fvapp.models import ApiKey, AuditEvent, utcnow
from fvapp.services import keys, plans
from fvapp.services.errors import DomainError, Forbidden, NotFound

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
FULL_KEY = re.compile(r"^fvk_live_[0-9A-Za-z]{38}$")


def from_base62(text: str) -> int:
    number = 0
    for char in text:
        number = number * 62 + ALPHABET.index(char)
    return number


def key_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ApiKey))


def audit_actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.created_at)))


def every_cell():
    """(table, column, text) for every column of every row of every table, Alembic's included."""
    for table in sa.inspect(db.engine).get_table_names():
        result = db.session.execute(sa.text(f'SELECT * FROM "{table}"'))
        columns = list(result.keys())
        for row in result:
            for column, value in zip(columns, row, strict=True):
                if value is not None:
                    yield table, column, str(value)


@pytest.fixture
def adam(demo):
    return demo.user("adam@acme.test")


# -- format ---------------------------------------------------------------------------------


def test_generated_keys_have_the_spec_format_and_a_crc32_checksum():
    generated = [keys.generate_key() for _ in range(200)]
    assert len(set(generated)) == 200
    for key in generated:
        assert FULL_KEY.match(key), key
        body, check = key[9:41], key[41:]
        assert len(body) == 32 and len(check) == 6
        assert from_base62(check) == zlib.crc32(body.encode("ascii"))
        assert keys.is_well_formed(key)


def test_any_single_character_change_fails_the_checksum():
    key = keys.generate_key()
    for position in range(9, len(key)):
        other = "a" if key[position] != "a" else "b"
        assert not keys.is_well_formed(key[:position] + other + key[position + 1:]), position


@pytest.mark.parametrize(
    "candidate",
    ["", "fvk_live_", "fvk_test_" + "A" * 38, "fvk_live_" + "A" * 37, "fvk_live_" + "A" * 39,
     "fvk_live_" + "A" * 37 + "-", "FVK_LIVE_" + "A" * 38, " fvk_live_" + "A" * 38],
)
def test_malformed_keys_are_rejected_without_the_database(candidate):
    assert not keys.is_well_formed(candidate)


def test_hash_and_display_prefix():
    key = keys.generate_key()
    assert keys.hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", keys.hash_key(key))
    assert keys.display_prefix(key) == key[:13] + "…"
    assert keys.display_prefix(key).startswith("fvk_live_")


# -- storage ----------------------------------------------------------------------------------


def test_the_hash_is_stored_and_the_clear_key_is_nowhere_in_the_database(app_context, demo, adam):
    created = [keys.create_key(demo.acme.id, adam.id, f"Service {n}", ip="203.0.113.9")
               for n in range(3)]
    keys.revoke_key(demo.acme.id, created[0].key.id, adam.id, ip="203.0.113.9")
    db.session.expire_all()
    for item in created:
        row = db.session.get(ApiKey, item.key.id)
        assert row.key_hash == hashlib.sha256(item.clear.encode()).hexdigest()
        assert row.prefix == item.clear[:13] + "…"
    cells = list(every_cell())
    assert any(table == "api_keys" for table, _, _ in cells)
    for item in created:
        body = item.clear[9:41]
        leaks = [(t, c) for t, c, text in cells if item.clear in text or body in text]
        assert leaks == []


def test_create_returns_the_clear_key_once_and_records_who_and_when(app_context, demo, adam):
    result = keys.create_key(demo.acme.id, adam.id, "  CI pipeline  ")
    assert keys.is_well_formed(result.clear)
    key = result.key
    assert key.name == "CI pipeline"
    assert key.created_by_id == adam.id and key.workspace_id == demo.acme.id
    assert key.created_at is not None and key.last_used_at is None and key.is_active
    assert not hasattr(key, "clear")


# -- name rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [("", "Give the key a name"), ("   ", "Give the key a name"), ("\t \n", "Give the key a name"),
     (None, "Give the key a name"), ("x" * 101, "at most 100 characters")],
)
def test_bad_names_are_refused_and_nothing_is_written(app_context, demo, adam, name, message):
    with pytest.raises(DomainError) as refused:
        keys.create_key(demo.acme.id, adam.id, name)
    assert message in refused.value.message
    assert refused.value.field == "name"
    assert key_count() == 0 and audit_actions() == []


def test_names_are_trimmed_and_100_characters_is_the_limit(app_context, demo, adam):
    assert keys.create_key(demo.acme.id, adam.id, "n" * 100).key.name == "n" * 100
    padded = "  " + "p" * 100 + "  "
    assert keys.create_key(demo.acme.id, adam.id, padded).key.name == "p" * 100


def test_html_in_a_name_is_stored_as_text(app_context, demo, adam):
    name = '<script>alert("x")</script> & <b>bold</b>'
    key_id = keys.create_key(demo.acme.id, adam.id, name).key.id
    db.session.expire_all()
    assert db.session.get(ApiKey, key_id).name == name


# -- who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "workspace"), [("mia@acme.test", "acme"), ("adam@acme.test", "fox"), ("fred@fox.test", "fox")]
)
def test_members_and_free_workspaces_cannot_create_or_revoke(app_context, demo, email, workspace):
    ws = getattr(demo, workspace)
    actor = demo.user(email)
    with pytest.raises(Forbidden):
        keys.create_key(ws.id, actor.id, "Sneaky")
    assert key_count() == 0
    existing = keys.create_key(demo.acme.id, demo.user("ava@acme.test").id, "Existing").key
    if workspace == "fox":  # a key made before a downgrade
        existing.workspace_id = ws.id
        db.session.commit()
    with pytest.raises(Forbidden):
        keys.revoke_key(ws.id, existing.id, actor.id)
    db.session.expire_all()
    assert db.session.get(ApiKey, existing.id).revoked_at is None
    assert audit_actions() == ["api_key.created"]


def test_internal_workspaces_qualify(app_context, demo, adam):
    plans.set_plan(demo.acme.id, "internal", actor_id=None)
    assert keys.create_key(demo.acme.id, adam.id, "Ops").key.is_active


# -- the cap ------------------------------------------------------------------------------------


def test_the_eleventh_active_key_is_refused_and_revoking_frees_a_slot(app_context, demo, adam):
    made = [keys.create_key(demo.acme.id, adam.id, f"Key {n}").key for n in range(10)]
    assert keys.count_active(demo.acme.id) == 10
    with pytest.raises(keys.KeyLimitReached) as refused:
        keys.create_key(demo.acme.id, adam.id, "Eleventh")
    assert "Revoke a key to create another" in refused.value.message
    assert key_count() == 10 and audit_actions().count("api_key.created") == 10

    keys.revoke_key(demo.acme.id, made[0].id, adam.id)
    assert keys.create_key(demo.acme.id, adam.id, "Replacement").key.is_active
    assert keys.count_active(demo.acme.id) == 10 and key_count() == 11


def test_the_cap_is_one_function(app_context, demo, adam, monkeypatch):
    """create_key asks keys.cap_reached, as the views do (see the HTTP tests)."""
    assert not keys.cap_reached(9) and keys.cap_reached(10) and keys.cap_reached(11)
    monkeypatch.setattr(keys, "cap_reached", lambda active: True)
    with pytest.raises(keys.KeyLimitReached):
        keys.create_key(demo.acme.id, adam.id, "First")
    assert key_count() == 0


def test_the_cap_is_per_workspace(app_context, demo, adam):
    plans.set_plan(demo.fox.id, "team", actor_id=None)
    for n in range(10):
        keys.create_key(demo.acme.id, adam.id, f"Acme {n}")
    assert keys.create_key(demo.fox.id, adam.id, "Fox 1").key.is_active


def test_twenty_concurrent_creates_leave_exactly_ten_active_keys(app_context, app, demo, adam, backend):
    workspace_id, actor_id = demo.acme.id, adam.id
    db.session.commit()  # end this thread's read transaction before the race
    start = threading.Barrier(20)
    outcomes: list[tuple[str, object]] = []
    record = threading.Lock()

    def attempt(n):
        with app.app_context():
            try:
                start.wait()
                result = keys.create_key(workspace_id, actor_id, f"Racer {n}")
                outcome = ("created", result.clear)
            except keys.KeyLimitReached as err:
                outcome = ("refused", err.message)
            except Exception as err:  # noqa: BLE001  (any other exception fails the test)
                outcome = ("error", repr(err))
            finally:
                db.session.remove()
            with record:
                outcomes.append(outcome)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    db.session.rollback()
    active = keys.count_active(workspace_id)
    created = [o for o in outcomes if o[0] == "created"]
    print(f"\n[{backend}] 20 concurrent creates: {len(created)} created, {active} active keys")
    assert [o for o in outcomes if o[0] == "error"] == []
    assert len(outcomes) == 20
    assert active == 10 and len(created) == 10
    assert all("Revoke a key to create another" in o[1] for o in outcomes if o[0] == "refused")
    assert audit_actions().count("api_key.created") == 10


# -- revoking -----------------------------------------------------------------------------------


def test_revoke_records_who_and_when_and_twice_changes_nothing(app_context, demo, adam):
    ava = demo.user("ava@acme.test")
    key = keys.create_key(demo.acme.id, adam.id, "CI pipeline").key
    first = keys.revoke_key(demo.acme.id, key.id, ava.id)  # any key of the workspace
    revoked_at = first.revoked_at
    assert revoked_at is not None and first.revoked_by_id == ava.id and first.revoked_reason is None
    again = keys.revoke_key(demo.acme.id, key.id, adam.id)
    assert again.revoked_at == revoked_at and again.revoked_by_id == ava.id
    assert audit_actions() == ["api_key.created", "api_key.revoked"]
    assert keys.count_active(demo.acme.id) == 0 and key_count() == 1  # kept, as a record


def test_revoking_another_workspaces_key_or_garbage_is_not_found(app_context, demo, adam):
    plans.set_plan(demo.fox.id, "pro", actor_id=None)
    theirs = keys.create_key(demo.fox.id, demo.user("fred@fox.test").id, "Fox key").key
    for key_id in (theirs.id, "not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFound):
            keys.revoke_key(demo.acme.id, key_id, adam.id)
    db.session.expire_all()
    assert db.session.get(ApiKey, theirs.id).revoked_at is None


def test_revoke_keys_of_creator_marks_the_reason_in_the_callers_transaction(app_context, demo, adam):
    ava = demo.user("ava@acme.test")
    mine = [keys.create_key(demo.acme.id, adam.id, f"Adam {n}").key.id for n in range(2)]
    hers = keys.create_key(demo.acme.id, ava.id, "Ava").key.id
    revoked = keys.revoke_keys_of_creator(demo.acme.id, adam.id, ava.id, keys.REASON_CREATOR_REMOVED)
    assert sorted(k.id for k in revoked) == sorted(mine)
    db.session.rollback()  # the caller decides: nothing happened
    assert keys.count_active(demo.acme.id) == 3
    keys.revoke_keys_of_creator(demo.acme.id, adam.id, ava.id, keys.REASON_CREATOR_REMOVED)
    db.session.commit()
    db.session.expire_all()
    assert {db.session.get(ApiKey, k).revoked_reason for k in mine} == {"creator removed from workspace"}
    assert db.session.get(ApiKey, hers).is_active


def test_list_is_active_first_then_newest_first(app_context, demo, adam):
    now = utcnow()
    made = {}
    for name, age in (("old active", 30), ("new active", 1), ("old revoked", 40), ("new revoked", 5)):
        key = keys.create_key(demo.acme.id, adam.id, name).key
        key.created_at = now - timedelta(minutes=age)
        db.session.commit()
        made[name] = key.id
    for name in ("old revoked", "new revoked"):
        keys.revoke_key(demo.acme.id, made[name], adam.id)
    assert [k.name for k in keys.list_keys(demo.acme.id)] == [
        "new active", "old active", "new revoked", "old revoked"]


# -- audit: with the change, never without it -------------------------------------------------


def test_create_writes_one_audit_event_naming_the_key(app_context, demo, adam):
    key = keys.create_key(demo.acme.id, adam.id, "CI pipeline", ip="198.51.100.7").key
    event = db.session.scalar(sa.select(AuditEvent))
    assert (event.action, event.actor_id, event.workspace_id) == ("api_key.created", adam.id, demo.acme.id)
    assert event.target_id == key.id and event.ip == "198.51.100.7"
    assert event.target_label == f"CI pipeline ({key.prefix})"


def test_a_failed_audit_write_leaves_no_key(app_context, demo, adam, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(keys.audit, "record", broken)
    with pytest.raises(RuntimeError):
        keys.create_key(demo.acme.id, adam.id, "CI pipeline")
    assert key_count() == 0 and audit_actions() == []


def test_a_failure_after_the_audit_event_leaves_no_event(app_context, demo, adam, monkeypatch):
    real = keys.audit.record

    def record_then_fail(**kwargs):
        real(**kwargs)
        db.session.flush()
        raise RuntimeError("crash after the audit row")

    key_id = keys.create_key(demo.acme.id, adam.id, "CI pipeline").key.id
    monkeypatch.setattr(keys.audit, "record", record_then_fail)
    with pytest.raises(RuntimeError):
        keys.create_key(demo.acme.id, adam.id, "Second")
    with pytest.raises(RuntimeError):
        keys.revoke_key(demo.acme.id, key_id, adam.id)
    db.session.expire_all()
    assert audit_actions() == ["api_key.created"]
    assert key_count() == 1 and db.session.get(ApiKey, key_id).is_active


def test_a_failed_insert_writes_no_audit_event(app_context, demo, adam, monkeypatch):
    same = keys.generate_key()
    monkeypatch.setattr(keys, "generate_key", lambda: same)
    keys.create_key(demo.acme.id, adam.id, "First")
    with pytest.raises(IntegrityError):  # the unique hash index refuses a duplicate
        keys.create_key(demo.acme.id, adam.id, "Duplicate")
    assert key_count() == 1 and audit_actions() == ["api_key.created"]
