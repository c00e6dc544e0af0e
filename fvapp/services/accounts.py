"""Users: creation and authentication."""

from __future__ import annotations

from sqlalchemy import select

from ..extensions import db
from ..models import EMAIL_MAX, NAME_MAX, User
from .errors import DomainError
from .passwords import (
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD_LENGTH,
    check_password,
    hash_password,
    password_too_long,
)
from .text import clean_text
from .transaction import atomic


def normalize_email(email: str) -> str:
    return (email or "").strip().lower()


def find_user(email: str) -> User | None:
    email = normalize_email(email)
    if not email or "\x00" in email or len(email) > EMAIL_MAX:  # no account has such an address
        return None
    return db.session.scalar(select(User).where(User.email == email))


def authenticate(email: str, password: str) -> User | None:
    """Exactly one bcrypt check, and the same None for an unknown email or a wrong password."""
    user = find_user(email)
    ok = check_password(password, user.password_hash if user else None)
    return user if ok and user else None


def validate_new_password(password: str) -> None:
    if password_too_long(password):
        raise DomainError(
            f"Passwords can be at most {MAX_PASSWORD_BYTES} bytes (about {MAX_PASSWORD_BYTES} "
            "plain letters; fewer with accents or emoji).",
            field="password",
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DomainError(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )


def create_user(email: str, name: str, password: str) -> User:
    email = normalize_email(email)
    if ("@" not in email or len(email) > EMAIL_MAX or email.startswith("@") or email.endswith("@")
            or "\x00" in email or any(c.isspace() for c in email)):
        raise DomainError("Enter a valid email address.", field="email")
    name = clean_text(name, field="name", max_length=NAME_MAX, what="Names", required="Enter a name.")
    validate_new_password(password)
    if find_user(email) is not None:
        raise DomainError(f"A user with the email {email} already exists.", field="email")
    user = User(email=email, name=name, password_hash=hash_password(password))
    with atomic():
        db.session.add(user)
    return user


def end_all_sessions(user: User) -> None:
    """Logout: every session cookie issued before now stops working."""
    with atomic():
        user.session_generation += 1
