"""POST /api/secret-scanning (SPEC §9): GitHub's secret-scanning partner endpoint. In the API
app (fvapp/api/app.py: its errors are envelopes, no session, no CSRF) but not the Bearer-key
API: its own blueprint, no key auth; the caller proves itself with an ECDSA signature."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, request

from ..services import leaks
from . import envelope

bp = Blueprint("secret_scanning", __name__)


@bp.post("/secret-scanning")  # below the API app's mount point: /api/secret-scanning
def report():
    keys_file = current_app.config.get("SECRET_SCANNING_KEYS_FILE")
    if not keys_file:
        return envelope.error(404)
    try:
        public_keys = leaks.load_public_keys(keys_file)
    except (OSError, ValueError, KeyError, TypeError):
        current_app.logger.exception("secret scanning: cannot read SECRET_SCANNING_KEYS_FILE")
        return envelope.error(503)
    body = request.get_data(cache=False)
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
