"""bcrypt for passwords, and only for passwords."""

from __future__ import annotations

import bcrypt
from flask import current_app

MAX_PASSWORD_BYTES = 72  # bcrypt's limit; longer passwords are refused, never truncated
MIN_PASSWORD_LENGTH = 12

_dummy_hashes: dict[int, bytes] = {}


def password_too_long(password: str) -> bool:
    return len(password.encode("utf-8")) > MAX_PASSWORD_BYTES


def hash_password(password: str, rounds: int | None = None) -> str:
    if password_too_long(password):
        raise ValueError(f"Passwords can be at most {MAX_PASSWORD_BYTES} bytes")
    rounds = rounds or current_app.config["BCRYPT_ROUNDS"]
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def check_password(password: str, password_hash: str | None) -> bool:
    """One bcrypt check whatever the input: against a dummy hash when there is no user,
    or when the password is too long for bcrypt, so every failure costs the same."""
    rounds = current_app.config["BCRYPT_ROUNDS"]
    if password_hash is None or password_too_long(password):
        dummy = _dummy_hashes.get(rounds)
        if dummy is None:
            dummy = _dummy_hashes[rounds] = bcrypt.hashpw(b"not-a-password", bcrypt.gensalt(rounds))
        bcrypt.checkpw(password.encode("utf-8")[:MAX_PASSWORD_BYTES], dummy)
        return False
    return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
