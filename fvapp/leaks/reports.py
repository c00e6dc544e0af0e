"""Leak reports (SPEC §9, GitHub secret-scanning partner format): verify the signature, revoke
each reported live key at once, record it and raise an alert for the workspace's managers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from ..extensions import db
from ..models import KeyLeakAlert, utcnow
from ..services import audit, keys
from ..services.errors import NotFound
from ..services.transaction import atomic

URL_MAX = 500

log = logging.getLogger(__name__)


class BadSignature(Exception):
    """Missing, unknown or invalid signature: the report is ignored."""


class BadReport(Exception):
    """The body is not a JSON array of {token, type, url, source} objects."""


class KeysUnavailable(Exception):
    """The verifying keys file cannot be read, or holds no usable key (503)."""


def load_public_keys(path: str) -> dict[str, ec.EllipticCurvePublicKey]:
    """GitHub's format: {"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}. An
    entry that cannot be used (no identifier, no PEM, not an EC public key) is skipped with one
    log line; KeysUnavailable when the file cannot be read or is not in that format."""
    try:
        with open(path, "rb") as fh:
            document = json.loads(fh.read())
    except OSError as err:
        raise KeysUnavailable(f"cannot read {path}: {err.strerror or err}") from None
    except (ValueError, RecursionError):
        raise KeysUnavailable(f"{path} is not JSON") from None
    entries = document.get("public_keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise KeysUnavailable(f'{path} has no "public_keys" list')
    loaded = {}
    for number, entry in enumerate(entries):
        try:
            identifier, pem = entry["key_identifier"], entry["key"]
            if not isinstance(identifier, (str, int)) or not str(identifier).strip():
                raise ValueError("no key_identifier")
            key = serialization.load_pem_public_key(pem.encode("ascii"))
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise ValueError("not an EC public key")
        except (KeyError, TypeError, AttributeError, ValueError, UnsupportedAlgorithm) as err:
            reason = (f"no {err}" if isinstance(err, KeyError)
                      else (str(err).splitlines() or [type(err).__name__])[0])
            log.warning("secret scanning: entry %d of %s skipped (%s)", number, path, reason)
            continue
        loaded[str(identifier).strip()] = key
    return loaded


class PublicKeys:
    """The verifying keys of one process: the file is read once, and again whenever it changes
    (another inode, size or modification time: one stat per report). What a read found, a
    failure included, stands until the file changes, so a bad file is logged once per change,
    not once per report."""

    def __init__(self):
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._found: dict[str, ec.EllipticCurvePublicKey] | KeysUnavailable = {}

    def get(self, path: str) -> dict[str, ec.EllipticCurvePublicKey]:
        """The usable keys; KeysUnavailable if the file cannot be read or none is usable."""
        try:
            info = os.stat(path)
            stamp: tuple = (path, info.st_ino, info.st_size, info.st_mtime_ns)
        except OSError as err:
            stamp = (path, err.errno)
        with self._lock:
            if stamp != self._stamp:
                try:
                    found = load_public_keys(path)
                    if not found:
                        raise KeysUnavailable(f"{path} holds no usable key")
                except KeysUnavailable as err:
                    log.error("secret scanning: %s", err)
                    found = err
                self._stamp, self._found = stamp, found
            found = self._found
        if isinstance(found, KeysUnavailable):
            raise found
        return found


def verify(body: bytes, identifier: str | None, signature_b64: str | None,
           public_keys: dict[str, ec.EllipticCurvePublicKey]) -> None:
    if not identifier or not signature_b64:
        raise BadSignature("missing signature headers")
    key = public_keys.get(identifier.strip())
    if key is None:
        raise BadSignature("unknown key identifier")
    try:
        signature = base64.b64decode(signature_b64.strip(), validate=True)
        key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as err:
        raise BadSignature("invalid signature") from err


@dataclass(frozen=True)
class Reported:
    token: str
    type: str
    url: str


def parse(body: bytes) -> list[Reported]:
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadReport("The body is not JSON.") from err
    except RecursionError:
        raise BadReport("The body is nested too deeply.") from None
    if not isinstance(items, list):
        raise BadReport("The body must be a JSON array of reported tokens.")
    reported = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            raise BadReport("Each reported token must be an object with a string \"token\".")
        token_type = item.get("type")
        url = item.get("url")
        reported.append(Reported(
            token=item["token"],
            type=token_type if isinstance(token_type, str) else "",
            url=(url if isinstance(url, str) else "")[:URL_MAX],
        ))
    return reported


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def handle_report(reported: list[Reported]) -> list[dict]:
    """Revoke every well-formed, known, active key; answer GitHub's feedback list. Idempotent:
    a key already revoked is a true positive and nothing changes."""
    candidates = {r.token: keys.hash_key(r.token) for r in reported if keys.is_well_formed(r.token)}
    with atomic():
        known = keys.find_by_hashes(sorted(set(candidates.values())))
        for item in reported:
            key = known.get(candidates.get(item.token, ""))
            if key is not None and keys.revoke_leaked(key, item.url or "an unknown place"):
                db.session.add(KeyLeakAlert(workspace_id=key.workspace_id, api_key_id=key.id,
                                            url=item.url, created_at=utcnow()))
    return [
        {"token_hash": token_hash(item.token), "token_type": item.type,
         "label": "true_positive" if candidates.get(item.token) in known else "false_positive"}
        for item in reported
    ]


# -- alerts on the API Keys page -------------------------------------------------------------


def open_alerts(workspace_id: uuid.UUID) -> list[KeyLeakAlert]:
    stmt = (
        select(KeyLeakAlert)
        .where(KeyLeakAlert.workspace_id == workspace_id, KeyLeakAlert.dismissed_at.is_(None))
        .order_by(KeyLeakAlert.created_at.desc(), KeyLeakAlert.id)
    )
    return list(db.session.scalars(stmt))


def dismiss_alert(workspace_id: uuid.UUID, alert_id: uuid.UUID | str, actor_id: uuid.UUID,
                  ip: str | None = None) -> None:
    """Idempotent; the caller has checked the actor may manage keys."""
    try:
        alert_uuid = alert_id if isinstance(alert_id, uuid.UUID) else uuid.UUID(str(alert_id))
    except ValueError:
        raise NotFound("Alert not found.") from None
    with atomic():
        alert = db.session.get(KeyLeakAlert, alert_uuid)
        if alert is None or alert.workspace_id != workspace_id:
            raise NotFound("Alert not found.")
        if alert.dismissed_at is None:
            alert.dismissed_at = utcnow()
            alert.dismissed_by_id = actor_id
            audit.record(workspace_id=workspace_id, actor_id=actor_id, action="leak_alert.dismissed",
                         target_type="api_key", target_id=alert.api_key_id,
                         target_label=f"{alert.api_key.name} ({alert.api_key.prefix})",
                         detail=alert.url, ip=ip)
