"""For tests of leak reports (SPEC §9): a GitHub-like signer (ECDSA P-256), a report, its POST."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

URL = "https://github.com/octo/repo/blob/abc/config.py"


class Signer:
    def __init__(self, identifier="k1"):
        self.identifier = identifier
        self.private = ec.generate_private_key(ec.SECP256R1())

    def pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def post(app, body, signer=None, identifier=None, signature=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        headers["Github-Public-Key-Identifier"] = identifier or signer.identifier
        headers["Github-Public-Key-Signature"] = signature or signer.sign(raw)
    return app.test_client().post("/api/secret-scanning", data=raw, headers=headers)


def report(token, url=URL):
    return [{"token": token, "type": "forcevue_api_key", "url": url, "source": "content"}]


def trusted_signer(app, directory) -> Signer:
    """A Signer whose public key the app trusts: a keys file in GitHub's format, written in
    `directory` and named by SECRET_SCANNING_KEYS_FILE."""
    signer = Signer()
    path = directory / "github-keys.json"
    path.write_text(json.dumps({"public_keys": [
        {"key_identifier": signer.identifier, "key": signer.pem(), "is_current": True}]}))
    app.config["SECRET_SCANNING_KEYS_FILE"] = str(path)
    return signer
