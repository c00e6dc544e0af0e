"""POST /api/secret-scanning (SPEC §9): GitHub's secret-scanning partner endpoint. In the API
app (fvapp/api/app.py: its errors are envelopes, no session, no CSRF) but not the Bearer-key
API: its own blueprint, no key auth; the caller proves itself with an ECDSA signature.

Answers: 200 GitHub's feedback list; 400 a body that is not a JSON array of reports (or is
nested too deeply); 401 a missing, unknown or invalid signature (nothing done); 404
SECRET_SCANNING_KEYS_FILE unset; 413 a body over SECRET_SCANNING_MAX_BYTES, however sent; 503
the keys file cannot be read or holds no usable key (or the database is unavailable).
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, request

from .. import bodies
from ..leaks import reports as leaks
from . import envelope

bp = Blueprint("secret_scanning", __name__)
EXTENSION = "fvapp_secret_scanning_keys"


@bp.record_once
def _keys_cache(state) -> None:
    state.app.extensions[EXTENSION] = leaks.PublicKeys()


@bp.post("/secret-scanning")  # below the API app's mount point: /api/secret-scanning
def report():
    keys_file = current_app.config.get("SECRET_SCANNING_KEYS_FILE")
    if not keys_file:
        return envelope.error(404)
    try:
        public_keys = current_app.extensions[EXTENSION].get(keys_file)
    except leaks.KeysUnavailable:  # logged once per change of the file
        return envelope.error(503)
    body = bodies.read(current_app.config["SECRET_SCANNING_MAX_BYTES"])
    try:
        leaks.verify(body, request.headers.get("Github-Public-Key-Identifier"),
                     request.headers.get("Github-Public-Key-Signature"), public_keys)
    except leaks.BadSignature as err:
        current_app.logger.warning("secret scanning: report refused (%s)", err)
        return envelope.error(401, message="Missing or invalid GitHub signature.")
    try:
        reported = leaks.parse(body)
    except leaks.BadReport as err:
        return envelope.error(400, message=str(err))
    feedback = leaks.handle_report(reported)
    return current_app.response_class(json.dumps(feedback), status=200, mimetype="application/json")
