"""Text that people type, made safe to store: one helper every service uses for its fields."""

from __future__ import annotations

from .errors import DomainError


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
