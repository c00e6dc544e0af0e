"""Text that people type, made safe to store: one helper every service uses for its fields."""

from __future__ import annotations

import unicodedata

from .errors import DomainError

# Bidirectional embeddings, overrides and isolates: they can make "exe.txt" read "txt.exe", so a
# name could pass itself off as another in a confirmation dialog.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cc" or char in BIDI_CONTROLS


def clean_text(
    value: str | None,
    *,
    field: str,
    max_length: int,
    what: str,
    required: str | None = None,
    multiline: bool = False,
) -> str | None:
    """Trimmed text within `max_length` characters, or a DomainError naming `field`.

    NUL is refused (PostgreSQL text cannot hold it, and both databases must answer alike).
    Multi-line text has its line breaks normalized to \\n first, because browsers send a
    textarea's breaks as CRLF while counting each as one character against `maxlength`.
    Empty text is None, or an error when `required` (the message) is given.
    """
    text = value or ""
    if "\x00" in text:
        raise DomainError(f"{what} cannot contain NUL characters.", field=field)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.strip()
    allowed = "\n\t" if multiline else ""
    if any(invisible(c) and c not in allowed for c in text):
        raise DomainError(
            f"{what} cannot contain control characters or text-direction overrides"
            + ("." if multiline else " (nor line breaks)."),
            field=field,
        )
    if not text:
        if required:
            raise DomainError(required, field=field)
        return None
    if len(text) > max_length:
        raise DomainError(
            f"{what} can be at most {max_length} characters (this one has {len(text)}).",
            field=field,
        )
    return text
